import { describe, expect, it } from 'vitest';
import { classifyClickHouseError, PermanentClickHouseError } from '../../../core/clickhouse/error-class.ts';

/** The shape @clickhouse/client and chdb throw: `code` (digits as a string) and `type`. */
function serverError(code: string, type: string, message = `${type} happened`): Error {
  return Object.assign(new Error(message), { code, type });
}

describe('classifyClickHouseError', () => {
  it.each([
    ['60', 'UNKNOWN_TABLE', 'tributary migrate'],
    ['16', 'NO_SUCH_COLUMN_IN_TABLE', 'tributary migrate'],
    ['81', 'UNKNOWN_DATABASE', 'CLICKHOUSE_URL'],
    ['497', 'ACCESS_DENIED', 'grant'],
    ['516', 'AUTHENTICATION_FAILED', 'credentials'],
    ['164', 'READONLY', 'read-only'],
    ['53', 'TYPE_MISMATCH', 'does not accept'],
    ['33', 'CANNOT_READ_ALL_DATA', 'does not accept'],
    ['27', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', 'does not accept'],
  ])('code %s (%s) is permanent, with what to do', (code, type, advice) => {
    const c = classifyClickHouseError(serverError(code, type));
    expect(c).toMatchObject({ kind: 'permanent', code, type });
    expect(c.kind === 'permanent' && c.advice).toContain(advice);
  });

  it.each([
    ['252', 'TOO_MANY_PARTS'],
    ['241', 'MEMORY_LIMIT_EXCEEDED'],
    ['159', 'TIMEOUT_EXCEEDED'],
    ['209', 'SOCKET_TIMEOUT'],
    ['210', 'NETWORK_ERROR'],
    ['202', 'TOO_MANY_SIMULTANEOUS_QUERIES'],
    ['242', 'TABLE_IS_READ_ONLY'],
    ['999', 'KEEPER_EXCEPTION'],
  ])('code %s (%s) is transient', (code, type) => {
    expect(classifyClickHouseError(serverError(code, type))).toMatchObject({ kind: 'transient', code, type });
  });

  it('treats network errors of Node (a code that is not a number) as transient', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    expect(classifyClickHouseError(refused)).toMatchObject({ kind: 'transient', code: 'ECONNREFUSED' });
    expect(classifyClickHouseError(new Error('socket hang up'))).toMatchObject({ kind: 'transient', code: undefined });
    expect(classifyClickHouseError('Timeout error.')).toMatchObject({ kind: 'transient', message: 'Timeout error.' });
  });

  it('recognises a permanent error by its type alone', () => {
    expect(classifyClickHouseError(Object.assign(new Error('x'), { type: 'ACCESS_DENIED' }))).toMatchObject({ kind: 'permanent', code: '497' });
  });

  it('says what failed and what to do in the error that stops the process', () => {
    const c = classifyClickHouseError(serverError('60', 'UNKNOWN_TABLE', 'Table default.agg_minute does not exist.'));
    if (c.kind !== 'permanent') throw new Error('expected permanent');
    const err = new PermanentClickHouseError('the emission of partials[0] into agg_minute', c);
    expect(err.message).toBe(
      'ClickHouse refused the emission of partials[0] into agg_minute with UNKNOWN_TABLE (code 60): Table default.agg_minute does not exist.. ' +
        'What to do: run `tributary migrate` against this ClickHouse (the aggregator expects the tables of schemas/clickhouse/), then restart',
    );
  });
});
