import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

// Every command's bad-configuration path, run as a user runs it: the output names the variable
// and never any part of a secret (each secret below carries MARK).
const MARK = 'SeCrEtMaRk';
const SECRET = `${MARK}`.padEnd(44, '7');
const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));
const COMMANDS = ['start', 'edge', 'gateway', 'aggregator', 'query-api', 'migrate'];
// Nothing listens there: a command that got past its configuration would fail on connecting.
const UNREACHABLE = { KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: 'http://127.0.0.1:1' };

/** Runs a command to its exit; the cases run side by side (each is its own process). */
function run(command: string, env: Record<string, string>): Promise<{ status: number | null; output: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|GATEWAY_|TRIBUTARY_|PSEUDONYM_|SALT_)/.test(k)));
  const child = spawn(process.execPath, [CLI, command], { env: { ...base, LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, output: `${stdout}\n${stderr}` }));
  });
}

describe.concurrent('configuration errors of every command never print a secret', () => {
  it.for(COMMANDS)('%s: a signing secret without its edge id', async (command, { expect }) => {
    const r = await run(command, { ...UNREACHABLE, GATEWAY_SIGNING_KEYS: `edge1:${SECRET},${SECRET}` });
    expect(r.status).toBe(2);
    expect(r.output).toContain('GATEWAY_SIGNING_KEYS entry 2');
    expect(r.output).not.toContain(MARK);
  });

  it.for(COMMANDS)('%s: a ClickHouse URL with a password', async (command, { expect }) => {
    const r = await run(command, { KAFKA_BROKERS: '127.0.0.1:1', CLICKHOUSE_URL: `clickhouse://default:${SECRET}@127.0.0.1:9000` });
    expect(r.status).toBe(2);
    expect(r.output).toContain('CLICKHOUSE_URL');
    expect(r.output).not.toContain(MARK);
  });

  it.for(['start', 'edge'])('%s: a malformed write key and a short salt', async (command, { expect }) => {
    const r = await run(command, { ...UNREACHABLE, TRIBUTARY_ENV: 'production', SALT_SOURCE: 'static', TRIBUTARY_WRITE_KEYS: `wk_${MARK}:site one`, PSEUDONYM_SALT: MARK.slice(0, 9) });
    expect(r.status).toBe(1);
    expect(r.output).toContain('TRIBUTARY_WRITE_KEYS entry 1');
    expect(r.output).toContain('PSEUDONYM_SALT is too short');
    expect(r.output).not.toContain(MARK);
  });

  it('edge with gateway salts: a gateway URL with credentials and a short key', async ({ expect }) => {
    const r = await run('edge', { ...UNREACHABLE, TRIBUTARY_WRITE_KEYS: 'wk:site', SALT_SOURCE: 'gateway', GATEWAY_URL: `http://edge:${SECRET}@gw.example.com`, GATEWAY_SIGNING_KEY: MARK });
    expect(r.status).toBe(1);
    expect(r.output).toContain('GATEWAY_URL');
    expect(r.output).not.toContain(MARK);
  });
});
