import { describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../edge/config.ts';
import { startNodeEdge } from '../../edge/node/server.ts';
import { testKafkaBrokers, uniqueName } from './setup/kafka-test-env.ts';
import { tempDedupDir } from './setup/dedup-dir.ts';

// No SASL broker here: the test broker's plaintext listener refuses the SASL handshake the edge's
// producer now starts with KAFKA_SASL_* set. That failure must name SASL and never carry the password.
const PASSWORD = 'sasl-pw-never-logged-91c2';

describe('Node edge with KAFKA_SASL_* against a broker without SASL', () => {
  it('fails to start on the SASL handshake, and neither the error nor the log holds the password', async () => {
    const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_it:it-site', PSEUDONYM_SALT: 'integration-salt-0123456789', DEDUP_DIR: tempDedupDir() });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    const lines: string[] = [];
    const started = startNodeEdge({
      config: config.config,
      brokers: testKafkaBrokers(),
      kafkaSecurity: { ssl: false, sasl: { mechanism: 'plain', username: 'edge-producer', password: PASSWORD } },
      port: 0,
      hostname: '127.0.0.1',
      topics: { partials: uniqueName('sasl-partials'), rejected: uniqueName('sasl-rejected') },
      log: (fields) => void lines.push(JSON.stringify(fields)),
    });
    const error = await started.then(
      async (edge) => {
        await edge.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const e = error as Error;
    const everything = [e.message, e.stack ?? '', JSON.stringify(e), String(e.cause ?? ''), ...lines].join('\n');
    expect(everything).toMatch(/sasl/i);
    expect(everything).not.toContain(PASSWORD);
  }, 60_000);
});
