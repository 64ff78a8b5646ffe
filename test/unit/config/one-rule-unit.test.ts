import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { resolveLocalKafkaConfig } from '../../../tools/kafka-local/local-kafka-config.ts';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { parseGatewayClientConfig } from '../../../edge/gateway-config.ts';
import { parseSaltSource } from '../../../edge/salt-source.ts';
import { parseWorkerConfig } from '../../../edge/worker/worker-config.ts';

// Settings read by several processes are parsed by one rule (shared/config): the cases where the
// edge, the Workers/Deno entries and the CLI used to disagree.
const KEY = 'k'.repeat(40);
const EDGE = { TRIBUTARY_WRITE_KEYS: 'wk_a:a', PSEUDONYM_SALT: 'p'.repeat(32) };
const WORKER = { ...EDGE, GATEWAY_URL: 'https://gw.example.com', GATEWAY_SIGNING_KEY: KEY };

const errorsOf = (r: { ok: true } | { ok: false; errors: string[] }): string[] => (r.ok ? [] : r.errors);

describe('one rule per setting, whichever process reads it', () => {
  it('refuses WINDOW_SIZE_MS=6e4 on the aggregator, the Node edge and Workers with the same message', () => {
    const message = 'WINDOW_SIZE_MS="6e4" is not valid: expected a whole number from 1000 to 86400000 (default 60000); write 60000 in plain digits';
    expect(errorsOf(parseCoreConfig({ WINDOW_SIZE_MS: '6e4' }))).toEqual([message]);
    expect(errorsOf(parseEdgeConfig({ ...EDGE, WINDOW_SIZE_MS: '6e4' }))).toEqual([message]);
    expect(errorsOf(parseWorkerConfig({ ...WORKER, WINDOW_SIZE_MS: '6e4' }))).toEqual([message]);
  });

  it.each(['SALT_EPOCH_MS', 'SALT_RETENTION_EPOCHS', 'WINDOW_SIZE_MS'])('gives the CLI and the edge the same message for a bad %s', (name) => {
    for (const raw of ['1.5', '-3', '0x10', '99999999999999']) {
      const core = errorsOf(parseCoreConfig({ [name]: raw }));
      expect(core).toHaveLength(1);
      expect(errorsOf(parseEdgeConfig({ ...EDGE, [name]: raw }))).toEqual(core);
    }
  });

  it('accepts SALT_SOURCE=Static on the CLI, Workers and Deno alike', () => {
    const core = parseCoreConfig({ SALT_SOURCE: 'Static' });
    expect(core.ok && core.config.saltSource).toBe('static');
    const worker = parseWorkerConfig({ ...WORKER, SALT_SOURCE: 'Static' });
    expect(worker.ok && worker.config.saltSource).toBe('static');
    expect(parseSaltSource({ SALT_SOURCE: 'Static' }, { supported: ['gateway', 'static'], fallback: 'gateway' })).toEqual({ ok: true, source: 'static' });
    const routing = parseCoreConfig({ PARTIALS_ROUTING: 'Source' });
    expect(routing.ok && routing.config.topics.partialsRouting).toBe('source');
  });

  it('counts TRIBUTARY_ENV=development as dev for the edge settings and the gateway client alike', () => {
    const edge = parseEdgeConfig({ TRIBUTARY_ENV: 'development' });
    expect(edge.ok && edge.config.env).toBe('dev');
    const plainHttp = { GATEWAY_URL: 'http://gw.internal:8082', GATEWAY_SIGNING_KEY: KEY };
    expect(parseGatewayClientConfig({ ...plainHttp, TRIBUTARY_ENV: 'development' }, { defaultEdgeId: 'deno' }).ok).toBe(true);
    expect(parseGatewayClientConfig({ ...plainHttp, TRIBUTARY_ENV: 'Dev' }, { defaultEdgeId: 'deno' }).ok).toBe(true);
    expect(parseGatewayClientConfig({ ...plainHttp, TRIBUTARY_ENV: 'prod' }, { defaultEdgeId: 'deno' }).ok).toBe(false);
    const prod = parseEdgeConfig({ ...EDGE, TRIBUTARY_ENV: 'PROD' });
    expect(prod.ok && prod.config.env).toBe('production');
  });

  it('reads the local broker port by the same whole-number rule', () => {
    expect(resolveLocalKafkaConfig({ env: { TRIBUTARY_KAFKA_PORT: ' 19092 ' } }).port).toBe(19_092);
    expect(resolveLocalKafkaConfig({ env: {} }).port).toBe(9092);
    expect(() => resolveLocalKafkaConfig({ env: { TRIBUTARY_KAFKA_PORT: '9.092e3' } })).toThrow(/^TRIBUTARY_KAFKA_PORT="9.092e3" is not valid: expected a whole number from 1 to 65534 \(default 9092\); write 9092 in plain digits/);
    expect(() => resolveLocalKafkaConfig({ env: { TRIBUTARY_KAFKA_PORT: '65535' } })).toThrow(/controller uses port \+ 1/);
  });

  it('reads the Workers-only whole numbers by the same rule, HEARTBEAT_TAIL_MS defaulting to two windows', () => {
    const r = parseWorkerConfig({ ...WORKER, WINDOW_SIZE_MS: '10000' });
    expect(r.ok && r.config.heartbeatTailMs).toBe(20_000);
    expect(errorsOf(parseWorkerConfig({ ...WORKER, DO_SHARDS: '8.0' }))).toEqual(['DO_SHARDS="8.0" is not valid: expected a whole number from 1 to 256 (default 8); write 8 in plain digits']);
  });
});

describe('near misses on Workers', () => {
  it('looks at the string vars only, never at other bindings', async () => {
    const { workerNearMisses } = await import('../../../edge/worker/worker-config.ts');
    const env = { WINDOW_SIZE_MS: '60000', DO_SHARD: '4', EDGE_SHARDS: { idFromName: () => 0 }, DO_SHARDS_X: 7 };
    expect(workerNearMisses(env).map((w) => [w.variable, w.probably])).toEqual([['DO_SHARD', 'DO_SHARDS']]);
  });
});
