import { describe, expect, it } from 'vitest';
import {
  ALL_SETTINGS,
  PROCESSES,
  SECRET_SETTINGS,
  SETTINGS,
  checkSettings,
  editDistance,
  nearMisses,
  readEnum,
  readListenHost,
  readText,
  readWhole,
} from '../../../shared/config/index.ts';

function whole(name: keyof typeof SETTINGS & string, value: string | undefined): { value: number; errors: string[] } {
  const errors: string[] = [];
  const s = SETTINGS[name];
  if (s.kind !== 'whole') throw new Error(`${name} is not a whole number`);
  return { value: readWhole({ [name]: value }, s, errors), errors };
}

describe('the schema', () => {
  it('names every setting once, with a process that reads it and valid bounds and defaults', () => {
    const names = ALL_SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of ALL_SETTINGS) {
      expect(s.processes.length, s.name).toBeGreaterThan(0);
      for (const p of s.processes) expect(PROCESSES, s.name).toContain(p);
      if (s.kind === 'whole') {
        expect(s.min, s.name).toBeLessThanOrEqual(s.default);
        expect(s.default, s.name).toBeLessThanOrEqual(s.max);
        expect(s.min, s.name).toBeGreaterThanOrEqual(0);
      }
      if (s.kind === 'enum') expect(s.values.map((v) => v.value), s.name).toContain(s.default);
    }
  });

  it('marks exactly the credentials as secrets', () => {
    expect([...SECRET_SETTINGS].sort()).toEqual(['CLICKHOUSE_PASSWORD', 'GATEWAY_SIGNING_KEY', 'GATEWAY_SIGNING_KEYS', 'KAFKA_SASL_PASSWORD', 'METRICS_TOKEN', 'PSEUDONYM_SALT', 'QUERY_READ_KEYS', 'TRIBUTARY_WRITE_KEYS']);
  });
});

describe('readWhole: plain decimal digits only, within bounds', () => {
  it('reads digits, trims blanks and gives the default when unset or blank', () => {
    expect(whole('WINDOW_SIZE_MS', ' 10000 ')).toEqual({ value: 10_000, errors: [] });
    expect(whole('WINDOW_SIZE_MS', undefined)).toEqual({ value: 60_000, errors: [] });
    expect(whole('WINDOW_SIZE_MS', '  ')).toEqual({ value: 60_000, errors: [] });
  });

  it('refuses 6e4 everywhere, saying how to write it', () => {
    expect(whole('WINDOW_SIZE_MS', '6e4')).toEqual({
      value: 60_000,
      errors: ['WINDOW_SIZE_MS="6e4" is not valid: expected a whole number from 1000 to 86400000 (default 60000); write 60000 in plain digits'],
    });
  });

  it.each(['+5000', '0x1388', '5e3', '5_000', '5000.0', '-1', '1.5', 'soon', '9007199254740993'])('refuses %s', (raw) => {
    const r = whole('HEARTBEAT_MS', raw);
    expect(r.value).toBe(5000);
    expect(r.errors).toEqual([expect.stringMatching(/^HEARTBEAT_MS=".*" is not valid: expected a whole number from 100 to 600000 \(default 5000\)/)]);
  });

  it('refuses values out of bounds, with the bounds in the message', () => {
    expect(whole('EDGE_PROCESSES', '0').errors).toEqual(['EDGE_PROCESSES="0" is not valid: expected a whole number from 1 to 256 (default 1)']);
    expect(whole('EDGE_PROCESSES', '257').errors).toHaveLength(1);
    expect(whole('EDGE_PROCESSES', '256')).toEqual({ value: 256, errors: [] });
  });

  it('checks that a window size divides a day', () => {
    expect(whole('WINDOW_SIZE_MS', '7000').errors).toEqual(['WINDOW_SIZE_MS=7000 must divide a day evenly (e.g. 10000, 60000, 300000) so hour and day rollups line up']);
  });

  it('takes a computed default or a per-process one', () => {
    const errors: string[] = [];
    expect(readWhole({}, SETTINGS.HEARTBEAT_TAIL_MS, errors, { fallback: 20_000 })).toBe(20_000);
    expect(readWhole({ HEARTBEAT_TAIL_MS: 'x' }, SETTINGS.HEARTBEAT_TAIL_MS, errors, { fallback: 20_000 })).toBe(20_000);
    expect(errors).toEqual([expect.stringContaining('(default 20000)')]);
  });
});

describe('readEnum: case-insensitive, aliases, per-process defaults and subsets', () => {
  it('accepts any case and gives back the canonical value', () => {
    for (const raw of ['static', 'Static', 'STATIC', ' static ']) {
      const errors: string[] = [];
      expect(readEnum({ SALT_SOURCE: raw }, SETTINGS.SALT_SOURCE, errors)).toBe('static');
      expect(readEnum({ SALT_SOURCE: raw }, SETTINGS.SALT_SOURCE, errors, { supported: ['gateway', 'static'] })).toBe('static');
      expect(errors).toEqual([]);
    }
  });

  it('takes development for dev and prod for production, in any case', () => {
    const errors: string[] = [];
    expect(readEnum({ TRIBUTARY_ENV: 'development' }, SETTINGS.TRIBUTARY_ENV, errors)).toBe('dev');
    expect(readEnum({ TRIBUTARY_ENV: 'Development' }, SETTINGS.TRIBUTARY_ENV, errors)).toBe('dev');
    expect(readEnum({ TRIBUTARY_ENV: 'PROD' }, SETTINGS.TRIBUTARY_ENV, errors)).toBe('production');
    expect(errors).toEqual([]);
  });

  it('gives each process its default', () => {
    const errors: string[] = [];
    expect(readEnum({}, SETTINGS.TRIBUTARY_ENV, errors)).toBe('production');
    expect(readEnum({}, SETTINGS.TRIBUTARY_ENV, errors, { process: 'start' })).toBe('dev');
    expect(readEnum({}, SETTINGS.SALT_SOURCE, errors, { process: 'edge-workers' })).toBe('gateway');
    expect(readEnum({}, SETTINGS.SALT_SOURCE, errors, { process: 'gateway' })).toBe('clickhouse');
  });

  it('lists the accepted values with their meaning; "here" when a process takes only some', () => {
    const errors: string[] = [];
    readEnum({ TRIBUTARY_ENV: 'staging' }, SETTINGS.TRIBUTARY_ENV, errors);
    readEnum({ SALT_SOURCE: 'clickhouse' }, SETTINGS.SALT_SOURCE, errors, { supported: ['gateway', 'static'] });
    readEnum({ SALT_SOURCE: 'vault' }, SETTINGS.SALT_SOURCE, errors);
    expect(errors).toEqual([
      'TRIBUTARY_ENV="staging" is not valid: use "dev" (demo write key, insecure salt) or "production"',
      'SALT_SOURCE="clickhouse" is not valid here: use "gateway" (random salts served by `tributary gateway` at GATEWAY_URL) or "static" (derived from PSEUDONYM_SALT)',
      'SALT_SOURCE="vault" is not valid: use "clickhouse" (random salts kept in ClickHouse; Node processes), "static" (derived from PSEUDONYM_SALT) or "gateway" (random salts served by `tributary gateway` at GATEWAY_URL)',
    ]);
  });
});

describe('readText', () => {
  it('checks patterns, never quoting a secret', () => {
    const errors: string[] = [];
    expect(readText({ PARTIALS_TOPIC: 'a topic' }, SETTINGS.PARTIALS_TOPIC, errors)).toBe('partials');
    expect(readText({ METRICS_TOKEN: 'short-SeCrEt' }, SETTINGS.METRICS_TOKEN, errors)).toBeUndefined();
    expect(errors[0]).toBe(`PARTIALS_TOPIC="a topic" is not a valid Kafka topic name: use letters, digits, '.', '_' or '-'`);
    expect(errors[1]).toMatch(/^METRICS_TOKEN is not valid: use at least 16 characters/);
    expect(errors.join()).not.toContain('SeCrEt');
  });

  it('keeps every character of a raw secret and unwraps bracketed listen addresses', () => {
    expect(readText({ PSEUDONYM_SALT: ' padded ' }, SETTINGS.PSEUDONYM_SALT, [])).toBe(' padded ');
    expect(readListenHost({ QUERY_HOST: '[::1]' }, SETTINGS.QUERY_HOST, [])).toBe('::1');
    expect(readListenHost({}, SETTINGS.QUERY_HOST, [])).toBe('127.0.0.1');
  });
});

describe('cross-setting checks', () => {
  it('run only with every setting they need, each once', () => {
    expect(checkSettings({ WINDOW_SIZE_MS: 60_000 })).toEqual([]);
    expect(checkSettings({ WINDOW_SIZE_MS: 60_000, SALT_EPOCH_MS: 90_000 })).toEqual([expect.stringMatching(/^SALT_EPOCH_MS=90000 must be a multiple of WINDOW_SIZE_MS=60000/)]);
    // A window size that does not divide a day is reported by its reader, not again here.
    expect(checkSettings({ WINDOW_SIZE_MS: 7_000, SALT_EPOCH_MS: 90_000 })).toEqual([]);
    expect(checkSettings({ HEARTBEAT_MS: 1000, FLUSH_INTERVAL_MS: 2000 })).toEqual([expect.stringMatching(/^HEARTBEAT_MS=1000 must be at least FLUSH_INTERVAL_MS=2000/)]);
    expect(checkSettings({ SALT_EPOCH_MS: 60_000, MAX_FUTURE_SKEW_MS: 300_000 })).toEqual([expect.stringMatching(/^SALT_EPOCH_MS=60000 must be at least MAX_FUTURE_SKEW_MS=300000/)]);
  });

  it('requires METRICS_TOKEN when /metrics is served beyond loopback', () => {
    expect(checkSettings({ QUERY_HOST: '0.0.0.0', METRICS_HOST: '127.0.0.1', METRICS_TOKEN: undefined })).toEqual([expect.stringMatching(/^QUERY_HOST=0\.0\.0\.0 serves \/metrics beyond this machine/)]);
    expect(checkSettings({ QUERY_HOST: '0.0.0.0', METRICS_HOST: '::1', METRICS_TOKEN: 't'.repeat(16) })).toEqual([]);
  });

  it('keeps rows longer than the correction horizon', () => {
    const base = { CORRECTION_HORIZON_MS: 86_400_000, RETENTION_MINUTE_DAYS: 1, RETENTION_HOUR_DAYS: 0, RETENTION_DAY_DAYS: 2 };
    expect(checkSettings(base)).toEqual([expect.stringMatching(/^RETENTION_MINUTE_DAYS=1 would delete windows that can still be corrected/)]);
  });
});

describe('near misses', () => {
  it('names the setting a misspelt variable is probably meant as', () => {
    expect(nearMisses({ WINDOW_SIZE: '60000', DEDUP_WINDOW: '1', TRIBUTARY_WRITE_KEY: 'wk:s', QUERY_PROT: '1', SALT_EPOCH: '1' })).toEqual([
      { name: 'DEDUP_WINDOW', probably: 'DEDUP_WINDOW_MS' },
      { name: 'QUERY_PROT', probably: 'QUERY_PORT' },
      { name: 'SALT_EPOCH', probably: 'SALT_EPOCH_MS' },
      { name: 'TRIBUTARY_WRITE_KEY', probably: 'TRIBUTARY_WRITE_KEYS' },
      { name: 'WINDOW_SIZE', probably: 'WINDOW_SIZE_MS' },
    ]);
  });

  it('never warns for the usual variables of a machine, nor for the settings themselves', () => {
    const usual = ['PATH', 'HOME', 'USER', 'SHELL', 'PWD', 'OLDPWD', 'TERM', 'LANG', 'LC_ALL', 'JAVA_HOME', 'NODE_OPTIONS', 'NODE_ENV', 'HOSTNAME', 'TMPDIR', 'CI', 'GITHUB_ACTIONS', 'GITHUB_TOKEN', 'SSH_AUTH_SOCK', 'XDG_RUNTIME_DIR', 'npm_config_cache', 'DISPLAY', 'EDITOR', 'MAIL', 'LOGNAME', 'SHLVL', 'KAFKA_HOME', 'KAFKA_HEAP_OPTS', 'VITEST_POOL_ID', 'TRIBUTARY_TEST_KAFKA_PORT'];
    const env = Object.fromEntries([...usual, ...ALL_SETTINGS.map((s) => s.name)].map((n) => [n, 'x']));
    expect(nearMisses(env)).toEqual([]);
    expect(nearMisses(process.env)).toEqual([]);
  });

  it('measures edit distance', () => {
    expect(editDistance('QUERY_PROT', 'QUERY_PORT')).toBe(2);
    expect(editDistance('KEY', 'KEYS')).toBe(1);
    expect(editDistance('abc', 'abc')).toBe(0);
    expect(editDistance('abcdef', 'uvwxyz', 2)).toBe(3);
  });
});
