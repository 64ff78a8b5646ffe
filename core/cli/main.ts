import { parseCoreConfig, type CoreConfig } from '../config/core-config.ts';
import { redactSecrets, secretValues } from '../config/secrets.ts';
import { createLogger } from '../log.ts';
import { SETTINGS, nearMissWarnings, readEnum } from '../../shared/config/index.ts';
import { createShutdown } from '../shutdown.ts';
import { runKafkaCommand } from './kafka-command.ts';
import { runReset } from './reset-command.ts';
import { errorMessage } from '../../shared/errors.ts';

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
  reset --yes             remove local state: the local broker's data (topics, consumer groups), the embedded
                          ClickHouse (CLICKHOUSE_PATH) and the dedup store (DEDUP_DIR); refuses while a local
                          broker or pipeline runs, and with KAFKA_BROKERS/CLICKHOUSE_URL set unless --local-only
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
  const levelErrors: string[] = [];
  const logLevel = readEnum(process.env, SETTINGS.LOG_LEVEL, levelErrors);
  const logger = createLogger('tributary', logLevel);
  // A misspelt setting (WINDOW_SIZE for WINDOW_SIZE_MS) is otherwise ignored without a word and
  // its default used; said before the configuration errors it may explain. Names only, never values.
  for (const warning of nearMissWarnings(process.env)) logger.warn(warning);
  const parsed = parseCoreConfig(process.env);
  if (!parsed.ok || levelErrors.length > 0) {
    console.error('Configuration is not valid:');
    for (const e of [...(parsed.ok ? [] : parsed.errors), ...levelErrors]) console.error(`  - ${redactSecrets(e, secrets)}`);
    return 2;
  }
  const config: CoreConfig = parsed.config;
  // SIGTERM ends every command within SHUTDOWN_TIMEOUT_MS, also while it is still starting.
  const shutdown = createShutdown({ deadlineMs: config.shutdownTimeoutMs, logger });
  // Loaded only for the commands that need them: `kafka ...` must work before anything else is built.
  const { runAggregator, runEdge, runGateway, runMigrate, runQueryApi, runStart } = await import('./commands.ts');
  let code = 1;
  try {
    switch (command) {
      case 'start':
        code = await runStart(config, logger, shutdown);
        break;
      case 'edge':
        code = await runEdge(config, logger, shutdown);
        break;
      case 'gateway':
        code = await runGateway(config, logger, shutdown);
        break;
      case 'aggregator':
        code = await runAggregator(config, logger, shutdown);
        break;
      case 'query-api':
        code = await runQueryApi(config, logger, shutdown);
        break;
      case 'migrate':
        code = await runMigrate(config);
        break;
      case 'reset':
        code = await runReset(config, rest);
        break;
      default:
        console.error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        code = 1;
    }
  } catch (err) {
    console.error(`tributary ${command} failed: ${redactSecrets(errorMessage(err), secrets)}`);
    code = 1;
  }
  // A client that never closed (a socket to an unreachable broker) must not keep a finished
  // command alive: the deadline exits with this code if something still holds the process.
  shutdown.armDeadline(code);
  return code;
}
