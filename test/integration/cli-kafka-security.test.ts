import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testKafkaBrokers } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// KAFKA_SSL / KAFKA_SASL_* reach the Node edge's producer as a user runs it. No SASL broker here:
// the test broker's plaintext listener refuses the SASL handshake, so an edge that got the settings
// fails on that handshake (one that ignored them would start and serve). The password never shows.
const MARK = 'SaSlPwMaRk';
const PASSWORD = MARK.padEnd(32, '3');
const CLI = fileURLToPath(new URL('../../bin/tributary.mjs', import.meta.url));
const SASL = { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'edge-producer', KAFKA_SASL_PASSWORD: PASSWORD };

function run(command: string, env: Record<string, string>): { status: number | null; output: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|GATEWAY_|TRIBUTARY_|PSEUDONYM_|SALT_|EDGE_)/.test(k)));
  const r = spawnSync(process.execPath, [CLI, command], { env: { ...base, LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '5000', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

const edgeEnv = () => ({ KAFKA_BROKERS: testKafkaBrokers().join(','), SALT_SOURCE: 'static', PSEUDONYM_SALT: 'cli-kafka-security-salt-0123456789', TRIBUTARY_WRITE_KEYS: 'wk_k:site', DEDUP_DIR: tempDedupDir(), EDGE_PORT: '0', ...SASL });

describe('Kafka TLS/SASL on the Node edge, through the CLI', () => {
  it('tributary edge uses them: it fails on the SASL handshake and never prints the password', () => {
    const r = run('edge', edgeEnv());
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/SASL/);
    expect(r.output).not.toContain('cannot use KAFKA_SSL');
    expect(r.output).not.toContain(MARK);
  });

  it('every worker of EDGE_PROCESSES=2 uses them too', () => {
    const r = run('edge', { ...edgeEnv(), EDGE_PROCESSES: '2' });
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/edge worker .* failed to start: .*SASL/);
    expect(r.output).not.toContain(MARK);
  });

  it('tributary start refuses them without KAFKA_BROKERS: its local broker is plaintext', () => {
    const r = run('start', { CLICKHOUSE_URL: 'http://127.0.0.1:1', KAFKA_SSL: 'true', ...SASL });
    expect(r.status).toBe(1);
    expect(r.output).toContain('local broker of `tributary start` is plaintext');
    expect(r.output).not.toContain('Starting local Kafka');
    expect(r.output).not.toContain(MARK);
  });
});
