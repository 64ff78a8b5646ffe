import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// A misspelt setting is warned about at start-up, once, naming the setting it probably means,
// and before the configuration errors it may explain; never with its value.
const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));

describe('tributary warns about variables that look like a misspelt setting', () => {
  it('names the known setting, once per variable, without the value', () => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|GATEWAY_|TRIBUTARY_|PSEUDONYM_|SALT_|WINDOW_|DEDUP_)/.test(k)));
    // A bad GATEWAY_SIGNING_KEYS stops `migrate` at its configuration (exit 2) without connecting anywhere.
    const env = { ...base, WINDOW_SIZE: '60000', TRIBUTARY_WRITE_KEY: 'wk_SeCrEtMaRk:site', GATEWAY_SIGNING_KEYS: 'no-colon', KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: 'http://127.0.0.1:1' };
    const r = spawnSync(process.execPath, [CLI, 'migrate'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    const warnings = r.stdout.split('\n').filter((l) => l.includes('"unknown_setting"')).map((l) => JSON.parse(l) as { variable: string; probably: string });
    expect(warnings.map((w) => [w.variable, w.probably])).toEqual([['TRIBUTARY_WRITE_KEY', 'TRIBUTARY_WRITE_KEYS'], ['WINDOW_SIZE', 'WINDOW_SIZE_MS']]);
    expect(`${r.stdout}${r.stderr}`).not.toContain('SeCrEtMaRk');
    expect(r.stderr).toContain('GATEWAY_SIGNING_KEYS');
  });
});
