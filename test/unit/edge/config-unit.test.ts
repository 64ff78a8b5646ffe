import { describe, expect, it } from 'vitest';
import { DEV_PSEUDONYM_SALT, parseEdgeConfig } from '../../../edge/config.ts';
import { createStaticSaltProvider } from '../../../shared/salts.ts';

const PROD = { TRIBUTARY_WRITE_KEYS: 'wk_demo:demo-site,wk_x:site-x', PSEUDONYM_SALT: 'a-very-secret-salt-value' };

function errorsOf(env: Record<string, string>): string[] {
  const r = parseEdgeConfig(env);
  return r.ok ? [] : r.errors;
}

describe('parseEdgeConfig', () => {
  it('applies the documented defaults', () => {
    const r = parseEdgeConfig(PROD);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      env: 'production',
      windowSizeMs: 60_000,
      flushIntervalMs: 1000,
      heartbeatMs: 5000,
      watermarkDelayMs: 1000,
      dimensions: ['country', 'path'],
      cardinalityCap: 1000,
      maxBodyBytes: 512 * 1024,
      maxEventsPerBatch: 500,
      maxEventBytes: 32 * 1024,
      maxFutureSkewMs: 300_000,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 15_000,
      maxConnections: 4096,
      maxInflightBodyBytes: 64 * 1024 * 1024,
      countryHeader: undefined,
      pseudonymSalt: 'a-very-secret-salt-value',
      saltEpochMs: 86_400_000,
      saltRetentionEpochs: 2,
      botPolicy: 'drop',
      pathQueryAllowlist: ['utm_source', 'utm_medium', 'utm_campaign'],
    });
    expect({ ...r.config.writeKeys }).toEqual({ wk_demo: 'demo-site', wk_x: 'site-x' });
    expect(Object.getPrototypeOf(r.config.writeKeys)).toBeNull();
  });

  it('gives dev a demo write key and a fixed salt', () => {
    const r = parseEdgeConfig({ TRIBUTARY_ENV: 'dev' });
    expect(r.ok && { ...r.config.writeKeys }).toEqual({ wk_demo: 'demo' });
    expect(r.ok && r.config.pseudonymSalt).toBe(DEV_PSEUDONYM_SALT);
  });

  it('requires write keys and a salt outside dev, without echoing secrets', () => {
    const errors = errorsOf({});
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^TRIBUTARY_WRITE_KEYS is required outside dev/);
    expect(errors[1]).toMatch(/^PSEUDONYM_SALT is required outside dev: .*openssl rand -hex 32/);
    const short = errorsOf({ ...PROD, PSEUDONYM_SALT: 'hunter2' });
    expect(short).toEqual([expect.stringMatching(/^PSEUDONYM_SALT is too short \(7 characters\)/)]);
    expect(short.join()).not.toContain('hunter2');
  });

  it('does not require PSEUDONYM_SALT when the salts come from a central store', () => {
    const r = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_a:a' }, { pseudonymSaltRequired: false });
    expect(r.ok && r.config.pseudonymSalt).toBe('');
    // A value that is set is still checked.
    const short = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_a:a', PSEUDONYM_SALT: 'hunter2' }, { pseudonymSaltRequired: false });
    expect(short.ok ? [] : short.errors).toEqual([expect.stringMatching(/^PSEUDONYM_SALT is too short/)]);
      // An entry that forgets to pass its provider fails at once instead of using an empty key.
    expect(() => createStaticSaltProvider({ secret: '', epochMs: 86_400_000, retentionEpochs: 2, now: Date.now })).toThrow(/PSEUDONYM_SALT/);
  });

  it('reads every setting', () => {
    const r = parseEdgeConfig({
      ...PROD,
      WINDOW_SIZE_MS: '10000',
      FLUSH_INTERVAL_MS: '250',
      HEARTBEAT_MS: '2000',
      WATERMARK_DELAY_MS: '0',
      DIMENSIONS: ' path ',
      CARDINALITY_CAP: '50',
      MAX_BODY_BYTES: '1048576',
      MAX_EVENTS_PER_BATCH: '100',
      MAX_EVENT_BYTES: '4096',
      MAX_FUTURE_SKEW_MS: '1000',
      COUNTRY_HEADER: 'CF-IPCountry',
      FLUSH_MAX_ROWS: '10',
      MAX_PENDING_ROWS: '1000',
      DEDUP_CAPACITY: '0',
      SALT_EPOCH_MS: '3600000',
      SALT_RETENTION_EPOCHS: '3',
      BOT_POLICY: 'KEEP',
      PATH_QUERY_ALLOWLIST: 'ref, utm_source,ref',
    });
    expect(r.ok).toBe(true);
    expect(r.ok && r.config).toMatchObject({
      windowSizeMs: 10_000,
      flushIntervalMs: 250,
      heartbeatMs: 2000,
      watermarkDelayMs: 0,
      dimensions: ['path'],
      cardinalityCap: 50,
      maxBodyBytes: 1_048_576,
      maxEventsPerBatch: 100,
      maxEventBytes: 4096,
      maxFutureSkewMs: 1000,
      countryHeader: 'cf-ipcountry',
      flushMaxRows: 10,
      maxPendingRows: 1000,
      dedupCapacity: 0,
      saltEpochMs: 3_600_000,
      saltRetentionEpochs: 3,
      botPolicy: 'keep',
      pathQueryAllowlist: ['ref', 'utm_source'],
    });
    expect(parseEdgeConfig({ ...PROD, PATH_QUERY_ALLOWLIST: 'none' })).toMatchObject({ ok: true, config: { pathQueryAllowlist: [] } });
    expect(parseEdgeConfig({ ...PROD, DIMENSIONS: 'is_bot,referrer_domain,os,browser,device,country,path' })).toMatchObject({
      ok: true,
      config: { dimensions: ['browser', 'country', 'device', 'is_bot', 'os', 'path', 'referrer_domain'] },
    });
  });

  it('names the variable and the accepted form for each bad value', () => {
    const errors = errorsOf({
      ...PROD,
      TRIBUTARY_ENV: 'staging',
      TRIBUTARY_WRITE_KEYS: 'wk_ok:site,broken,wk_ok:again',
      WINDOW_SIZE_MS: '7000',
      FLUSH_INTERVAL_MS: 'soon',
      HEARTBEAT_MS: '-1',
      DIMENSIONS: 'path,device,brwoser,city',
      CARDINALITY_CAP: '0',
      MAX_BODY_BYTES: '1.5',
      COUNTRY_HEADER: 'bad header',
    });
    expect(errors).toEqual([
      'TRIBUTARY_ENV="staging" is not valid: use "dev" (demo write key, insecure salt) or "production"',
      expect.stringMatching(/^TRIBUTARY_WRITE_KEYS entry 2 is not valid: expected a comma list of writeKey:siteId pairs/),
      'TRIBUTARY_WRITE_KEYS entry 3 repeats the write key of entry 1: each key maps to one site',
      'WINDOW_SIZE_MS=7000 must divide a day evenly (e.g. 10000, 60000, 300000) so hour and day rollups line up',
      'FLUSH_INTERVAL_MS="soon" is not valid: expected a whole number from 10 to 60000 (default 1000)',
      'HEARTBEAT_MS="-1" is not valid: expected a whole number from 100 to 600000 (default 5000)',
      'DIMENSIONS entry "brwoser" is not supported: use a comma list of path, country, device, browser, os, referrer_domain, is_bot',
      expect.stringMatching(/^DIMENSIONS entry "city" is not supported/),
      'CARDINALITY_CAP="0" is not valid: expected a whole number from 1 to 1000000 (default 1000)',
      'MAX_BODY_BYTES="1.5" is not valid: expected a whole number from 1024 to 67108864 (default 524288)',
      'COUNTRY_HEADER="bad header" is not a valid HTTP header name (example: CF-IPCountry or X-Country-Code)',
    ]);
  });

  it('checks the salt epoch and enrichment settings', () => {
    expect(
      errorsOf({ ...PROD, SALT_EPOCH_MS: '90000', SALT_RETENTION_EPOCHS: '0', BOT_POLICY: 'block', PATH_QUERY_ALLOWLIST: 'utm_source,a b' }),
    ).toEqual([
      'SALT_RETENTION_EPOCHS="0" is not valid: expected a whole number from 1 to 366 (default 2)',
      'BOT_POLICY="block" is not valid: use "drop" (bots are not aggregated, only counted) or "keep" (aggregated; group by dimension is_bot)',
      expect.stringMatching(/^PATH_QUERY_ALLOWLIST entry "a b" is not valid/),
      expect.stringMatching(/^SALT_EPOCH_MS=90000 must be a multiple of WINDOW_SIZE_MS=60000: a window must not span two salt epochs/),
      expect.stringMatching(/^SALT_EPOCH_MS=90000 must be at least MAX_FUTURE_SKEW_MS=300000/),
    ]);
    expect(errorsOf({ ...PROD, SALT_EPOCH_MS: '600000' })).toEqual([]);
  });

  it('requires heartbeats to be no more frequent than flushes', () => {
    expect(errorsOf({ ...PROD, FLUSH_INTERVAL_MS: '2000', HEARTBEAT_MS: '1000' })).toEqual([expect.stringMatching(/^HEARTBEAT_MS=1000 must be at least FLUSH_INTERVAL_MS=2000/)]);
  });

  it('reads the Node limits and refuses an in-flight cap below one body', () => {
    const r = parseEdgeConfig({ ...PROD, HEADERS_TIMEOUT_MS: '2000', BODY_TIMEOUT_MS: '30000', MAX_CONNECTIONS: '100', MAX_INFLIGHT_BODY_BYTES: '1048576' });
    expect(r.ok && [r.config.headersTimeoutMs, r.config.bodyTimeoutMs, r.config.maxConnections, r.config.maxInflightBodyBytes]).toEqual([2000, 30_000, 100, 1_048_576]);
    expect(errorsOf({ ...PROD, MAX_BODY_BYTES: '1048576', MAX_INFLIGHT_BODY_BYTES: '524288' })).toEqual([expect.stringMatching(/^MAX_INFLIGHT_BODY_BYTES=524288 is smaller than MAX_BODY_BYTES=1048576/)]);
  });
});
