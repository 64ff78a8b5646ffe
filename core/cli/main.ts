import { parseCoreConfig, type CoreConfig } from '../config/core-config.ts';
import { redactSecrets, secretValues } from '../config/secrets.ts';
import { createLogger } from '../log.ts';
import { runKafkaCommand } from './kafka-command.ts';

const USAGE = `tributary <command>

Commands:
  start                   the whole pipeline on this machine: local Kafka (unless KAFKA_BROKERS),
                          embedded ClickHouse (unless CLICKHOUSE_URL), migrations, edge, aggregator, query API
  edge                    the Node edge collector (needs KAFKA_BROKERS)
  gateway                 receives signed envelopes from Workers/Deno edges and produces them to Kafka
                          (needs KAFKA_BROKERS and GATEWAY_SIGNING_KEYS; port GATEWAY_PORT, default 8082)
  aggregator              the central aggregator (needs KAFKA_BROKERS)
  query-api               the HTTP query API
  migrate                 apply schemas/clickhouse migrations
  kafka start|stop|status|fetch   manage the local single-node Kafka broker

Configuration comes from the environment; see README.md.`;

/** CLI entry: returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === 'kafka') return runKafkaCommand(rest);

  const secrets = secretValues(process.env);
  const parsed = parseCoreConfig(process.env);
  if (!parsed.ok) {
    console.error('Configuration is not valid:');
    for (const e of parsed.errors) console.error(`  - ${redactSecrets(e, secrets)}`);
    return 2;
  }
  const config: CoreConfig = parsed.config;
  const logger = createLogger('tributary', process.env.LOG_LEVEL ?? 'info');
  // Loaded only for the commands that need them: `kafka ...` must work before anything else is built.
  const { runAggregator, runEdge, runGateway, runMigrate, runQueryApi, runStart } = await import('./commands.ts');
  try {
    switch (command) {
      case 'start':
        return await runStart(config, logger);
      case 'edge':
        return await runEdge(config, logger);
      case 'gateway':
        return await runGateway(config, logger);
      case 'aggregator':
        return await runAggregator(config, logger);
      case 'query-api':
        return await runQueryApi(config, logger);
      case 'migrate':
        return await runMigrate(config);
      default:
        console.error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return 1;
    }
  } catch (err) {
    console.error(`tributary ${command} failed: ${redactSecrets(err instanceof Error ? err.message : String(err), secrets)}`);
    return 1;
  }
}
