/**
 * The checks that involve more than one setting, each written once. A process passes the
 * values it has parsed, keyed by setting name; a check runs only when every setting it needs is
 * among them (`undefined` counts as present and unset). Messages come in this list's order.
 */
import { isLoopbackHost } from './hosts.ts';
import { DAY_MS, type SettingName } from './settings.ts';

export type SettingValues = Partial<Record<SettingName, number | string | undefined>>;

interface CrossCheck {
  needs: readonly SettingName[];
  check(v: SettingValues): string[];
}

const num = (v: SettingValues, name: SettingName): number => Number(v[name]);
const daysOf = (days: number): number => days * DAY_MS;

export const CROSS_CHECKS: readonly CrossCheck[] = [
  {
    // A window size that does not divide a day is already reported by its reader.
    needs: ['WINDOW_SIZE_MS', 'SALT_EPOCH_MS'],
    check(v) {
      const window = num(v, 'WINDOW_SIZE_MS');
      const epoch = num(v, 'SALT_EPOCH_MS');
      if (DAY_MS % window !== 0 || epoch % window === 0) return [];
      return [`SALT_EPOCH_MS=${epoch} must be a multiple of WINDOW_SIZE_MS=${window}: a window must not span two salt epochs, or one user would count twice in it`];
    },
  },
  {
    needs: ['SALT_EPOCH_MS', 'MAX_FUTURE_SKEW_MS'],
    check(v) {
      const epoch = num(v, 'SALT_EPOCH_MS');
      const skew = num(v, 'MAX_FUTURE_SKEW_MS');
      if (epoch >= skew) return [];
      return [`SALT_EPOCH_MS=${epoch} must be at least MAX_FUTURE_SKEW_MS=${skew}: event times clamped into the future must fall at most one epoch ahead`];
    },
  },
  {
    needs: ['HEARTBEAT_MS', 'FLUSH_INTERVAL_MS'],
    check(v) {
      const heartbeat = num(v, 'HEARTBEAT_MS');
      const flush = num(v, 'FLUSH_INTERVAL_MS');
      if (heartbeat >= flush) return [];
      return [`HEARTBEAT_MS=${heartbeat} must be at least FLUSH_INTERVAL_MS=${flush}: heartbeats are only sent between flushes`];
    },
  },
  {
    needs: ['MAX_BODY_BYTES', 'MAX_INFLIGHT_BODY_BYTES'],
    check(v) {
      const body = num(v, 'MAX_BODY_BYTES');
      const inflight = num(v, 'MAX_INFLIGHT_BODY_BYTES');
      if (inflight >= body) return [];
      return [`MAX_INFLIGHT_BODY_BYTES=${inflight} is smaller than MAX_BODY_BYTES=${body}: a request of the largest allowed size could never be read; raise MAX_INFLIGHT_BODY_BYTES`];
    },
  },
  {
    // Prometheus text names topics, partitions and sites' traffic: never beyond loopback without a token.
    needs: ['QUERY_HOST', 'METRICS_HOST', 'METRICS_TOKEN'],
    check(v) {
      if (v.METRICS_TOKEN !== undefined) return [];
      return (['QUERY_HOST', 'METRICS_HOST'] as const)
        .filter((name) => !isLoopbackHost(String(v[name])))
        .map((name) => `${name}=${String(v[name])} serves /metrics beyond this machine: set METRICS_TOKEN (at least 16 characters; Prometheus sends it as a bearer token) or keep ${name}=127.0.0.1`);
    },
  },
  {
    // A correction delta for a window older than its table's TTL would be deleted at the next merge.
    needs: ['CORRECTION_HORIZON_MS', 'RETENTION_MINUTE_DAYS', 'RETENTION_HOUR_DAYS', 'RETENTION_DAY_DAYS'],
    check(v) {
      const horizon = num(v, 'CORRECTION_HORIZON_MS');
      return (['RETENTION_MINUTE_DAYS', 'RETENTION_HOUR_DAYS', 'RETENTION_DAY_DAYS'] as const)
        .filter((name) => num(v, name) > 0 && daysOf(num(v, name)) <= horizon)
        .map((name) => `${name}=${num(v, name)} would delete windows that can still be corrected (CORRECTION_HORIZON_MS=${horizon}): keep rows longer than the correction horizon, or set 0 to keep them forever`);
    },
  },
];

/** Messages of every cross-setting check whose settings are all in `values`. */
export function checkSettings(values: SettingValues): string[] {
  return CROSS_CHECKS.filter((c) => c.needs.every((name) => name in values)).flatMap((c) => c.check(values));
}
