import { describe, expect, it } from 'vitest';
import { kafkaClientConfig } from '../../../core/kafka/client.ts';
import type { KafkaSecurity } from '../../../core/config/kafka-security.ts';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { edgeKafkaClientOptions } from '../../../edge/node/server.ts';
import { workerStartOptions } from '../../../edge/node/cluster.ts';

// The Node edge's producer authenticates like the gateway's and the aggregator's (KAFKA_SSL,
// KAFKA_SASL_*): in `tributary edge`, in each EDGE_PROCESSES worker, and inside `tributary start`.
const security: KafkaSecurity = { ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'edge-producer', password: 'pw-never-logged-7f3a' } };

function edgeConfig() {
  const parsed = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_u:site', PSEUDONYM_SALT: 'unit-salt-0123456789abcdef' });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  return parsed.config;
}

describe('Node edge Kafka security', () => {
  it('builds the producer client with TLS and SASL when they are configured', () => {
    const config = kafkaClientConfig(edgeKafkaClientOptions({ brokers: ['kafka-1:9093'], kafkaSecurity: security }, 'edge-a', () => undefined));
    expect(config.ssl).toBe(true);
    expect(config.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'edge-producer', password: 'pw-never-logged-7f3a' });
    expect(config.brokers).toEqual(['kafka-1:9093']);
    expect(config.clientId).toBe('edge-a');
  });

  it('stays plaintext without authentication when none is configured', () => {
    const config = kafkaClientConfig(edgeKafkaClientOptions({ brokers: ['kafka-1:9092'] }, 'edge-a', () => undefined));
    expect(config.ssl).toBeUndefined();
    expect(config.sasl).toBeUndefined();
  });

  it('hands the settings to every worker process of a multi-process edge, intact across the JSON of IPC', () => {
    const options = workerStartOptions({ config: edgeConfig(), brokers: ['kafka-1:9093'], kafkaSecurity: security, port: 0, processes: 2 });
    const received = JSON.parse(JSON.stringify(options)) as typeof options;
    expect(received.kafkaSecurity).toEqual(security);
    const config = kafkaClientConfig(edgeKafkaClientOptions(received, 'edge-a-1', () => undefined));
    expect(config.ssl).toBe(true);
    expect(config.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'edge-producer' });
  });
});
