import { errorMessage } from '../../shared/errors.ts';
/**
 * Whether a failed ClickHouse call can succeed if the same call is retried later.
 *
 * - `transient`: the server is unreachable, slow or overloaded (network errors, timeouts,
 *   TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, ...): back off and retry the same write with the same
 *   deduplication token; the partition pulls nothing meanwhile.
 * - `permanent`: retrying cannot help until a human changes something (a missing table or column,
 *   access denied, a read-only user, our own rows refused as malformed): the process stops with a
 *   message that says what failed and what to do, so a supervisor and a human notice.
 *
 * Errors of `@clickhouse/client` carry the server's numeric `code` (as a string) and its name as
 * `type`; chdb reshapes its native errors into the same form (`Code: N. DB::Exception: ... (TYPE)`).
 * Anything without a code we know is treated as transient: retrying is the safe default (nothing is
 * committed past a failed write), and the growing consumer lag makes it visible.
 */
export type ClickHouseErrorClass =
  | { kind: 'transient'; code: string | undefined; type: string | undefined; message: string }
  | { kind: 'permanent'; code: string; type: string | undefined; message: string; advice: string };

interface PermanentCode {
  type: string;
  advice: string;
}

const SCHEMA = 'run `tributary migrate` against this ClickHouse (the aggregator expects the tables of schemas/clickhouse/), then restart';
const ACCESS = "grant the aggregator's user INSERT and SELECT on the Tributary tables (or fix CLICKHOUSE_URL's credentials), then restart";
const OUR_ROWS = 'this version writes rows the table does not accept: check that `tributary migrate` ran with the same version, then report it with the log line';

/** Server error codes (ClickHouse src/Common/ErrorCodes.cpp) that no retry can fix. */
const PERMANENT = new Map<string, PermanentCode>([
  ['8', { type: 'THERE_IS_NO_COLUMN', advice: SCHEMA }],
  ['16', { type: 'NO_SUCH_COLUMN_IN_TABLE', advice: SCHEMA }],
  ['47', { type: 'UNKNOWN_IDENTIFIER', advice: SCHEMA }],
  ['60', { type: 'UNKNOWN_TABLE', advice: SCHEMA }],
  ['81', { type: 'UNKNOWN_DATABASE', advice: 'create the database named in CLICKHOUSE_URL (or fix the URL) and run `tributary migrate`, then restart' }],
  ['192', { type: 'UNKNOWN_USER', advice: ACCESS }],
  ['193', { type: 'WRONG_PASSWORD', advice: ACCESS }],
  ['194', { type: 'REQUIRED_PASSWORD', advice: ACCESS }],
  ['497', { type: 'ACCESS_DENIED', advice: ACCESS }],
  ['516', { type: 'AUTHENTICATION_FAILED', advice: ACCESS }],
  ['164', { type: 'READONLY', advice: 'the ClickHouse user is read-only (readonly setting): give the aggregator a user that may insert, then restart' }],
  ['53', { type: 'TYPE_MISMATCH', advice: OUR_ROWS }],
  ['6', { type: 'CANNOT_PARSE_TEXT', advice: OUR_ROWS }],
  ['27', { type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', advice: OUR_ROWS }],
  ['33', { type: 'CANNOT_READ_ALL_DATA', advice: OUR_ROWS }],
  ['38', { type: 'CANNOT_PARSE_DATE', advice: OUR_ROWS }],
  ['41', { type: 'CANNOT_PARSE_DATETIME', advice: OUR_ROWS }],
  ['43', { type: 'ILLEGAL_TYPE_OF_ARGUMENT', advice: OUR_ROWS }],
  ['62', { type: 'SYNTAX_ERROR', advice: OUR_ROWS }],
  ['70', { type: 'CANNOT_CONVERT_TYPE', advice: OUR_ROWS }],
  ['72', { type: 'CANNOT_PARSE_NUMBER', advice: OUR_ROWS }],
  ['115', { type: 'UNKNOWN_SETTING', advice: 'this ClickHouse does not know a setting the aggregator sends: upgrade it to a supported version (README)' }],
  ['117', { type: 'INCORRECT_DATA', advice: OUR_ROWS }],
]);

const PERMANENT_BY_TYPE = new Map([...PERMANENT].map(([code, p]) => [p.type, { code, ...p }]));

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * Classifies an error thrown by a ClickHouse call (insert, query, command).
 *
 * @example
 * const c = classifyClickHouseError(err);
 * if (c.kind === 'permanent') throw new Error(`insert into agg_minute failed: ${c.message}; ${c.advice}`);
 */
export function classifyClickHouseError(err: unknown): ClickHouseErrorClass {
  const message = errorMessage(err);
  const rawCode = field(err, 'code');
  const rawType = field(err, 'type');
  // Node system errors (ECONNREFUSED, ETIMEDOUT, ...) use `code` too, with a name: only digits are server codes.
  const code = typeof rawCode === 'string' && /^\d+$/.test(rawCode) ? rawCode : typeof rawCode === 'number' ? String(rawCode) : undefined;
  const type = typeof rawType === 'string' && rawType !== '' ? rawType : undefined;
  const known = (code !== undefined ? PERMANENT.get(code) : undefined) ?? (type !== undefined ? PERMANENT_BY_TYPE.get(type) : undefined);
  if (known) return { kind: 'permanent', code: code ?? PERMANENT_BY_TYPE.get(known.type)!.code, type: type ?? known.type, message, advice: known.advice };
  return { kind: 'transient', code: code ?? (typeof rawCode === 'string' ? rawCode : undefined), type, message };
}

/** Thrown when a ClickHouse write failed permanently: the process must stop, not retry. */
export class PermanentClickHouseError extends Error {
  override readonly name = 'PermanentClickHouseError';
  constructor(
    /** What was being written, e.g. `the emission of topic[3] into agg_minute`. */
    readonly what: string,
    readonly classified: Extract<ClickHouseErrorClass, { kind: 'permanent' }>,
  ) {
    super(`ClickHouse refused ${what} with ${classified.type ?? 'code'} (code ${classified.code}): ${classified.message}. What to do: ${classified.advice}`);
  }
}
