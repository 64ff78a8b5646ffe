import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every command's bad-configuration path, run as a user runs it: the output names the variable
// and never any part of a secret (each secret below carries MARK).
const MARK = 'SeCrEtMaRk';
const SECRET = `${MARK}`.padEnd(44, '7');
const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));
const COMMANDS = ['start', 'edge', 'gateway', 'aggregator', 'query-api', 'migrate'];
// Nothing listens there: a command that got past its configuration would fail on connecting.
const UNREACHABLE = { KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: 'http://127.0.0.1:1' };

function run(command: string, env: Record<string, string>): { status: number | null; output: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|GATEWAY_|TRIBUTARY_|PSEUDONYM_|SALT_)/.test(k)));
  const r = spawnSync(process.execPath, [CLI, command], { env: { ...base, LOG_LEVEL: 'debug', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

describe('configuration errors of every command never print a secret', () => {
  it.each(COMMANDS)('%s: a signing secret without its edge id', (command) => {
    const r = run(command, { ...UNREACHABLE, GATEWAY_SIGNING_KEYS: `edge1:${SECRET},${SECRET}` });
    expect(r.status).toBe(2);
    expect(r.output).toContain('GATEWAY_SIGNING_KEYS entry 2');
    expect(r.output).not.toContain(MARK);
  });

  it.each(COMMANDS)('%s: a ClickHouse URL with a password', (command) => {
    const r = run(command, { KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: `clickhouse://default:${SECRET}@127.0.0.1:9000` });
    expect(r.status).toBe(2);
    expect(r.output).toContain('CLICKHOUSE_URL');
    expect(r.output).not.toContain(MARK);
  });

  it.each(['start', 'edge'])('%s: a malformed write key and a short salt', (command) => {
    const r = run(command, { ...UNREACHABLE, TRIBUTARY_ENV: 'production', SALT_SOURCE: 'static', TRIBUTARY_WRITE_KEYS: `wk_${MARK}:site one`, PSEUDONYM_SALT: MARK.slice(0, 9) });
    expect(r.status).toBe(1);
    expect(r.output).toContain('TRIBUTARY_WRITE_KEYS entry 1');
    expect(r.output).toContain('PSEUDONYM_SALT is too short');
    expect(r.output).not.toContain(MARK);
  });

  it('edge with gateway salts: a gateway URL with credentials and a short key', () => {
    const r = run('edge', { ...UNREACHABLE, TRIBUTARY_WRITE_KEYS: 'wk:site', SALT_SOURCE: 'gateway', GATEWAY_URL: `http://edge:${SECRET}@gw.example.com`, GATEWAY_SIGNING_KEY: MARK });
    expect(r.status).toBe(1);
    expect(r.output).toContain('GATEWAY_URL');
    expect(r.output).not.toContain(MARK);
  });
});
