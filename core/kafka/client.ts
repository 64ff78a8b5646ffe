import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from '../log.ts';

/** Kafka client for the core processes; kafkajs' own logs go through our structured logger. */
export function createKafka(brokers: string[], clientId: string, logger: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => {
      const fields = { event: 'kafka_client', kafka_logger: log.logger, message: log.message };
      if (level <= logLevel.ERROR) logger.error(fields);
      else logger.warn(fields);
    },
  });
}
