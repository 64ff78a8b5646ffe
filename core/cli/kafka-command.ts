import { fetchKafkaJars, LocalKafkaError, localKafkaStatus, startLocalKafka, stopLocalKafka } from '../../tools/kafka-local/local-broker.ts';

const progress = (event: string, fields: Record<string, unknown>): void => {
  console.error(JSON.stringify({ event, ...fields }));
};

/** `tributary kafka start|stop|status|fetch`: the local single-node broker. */
export async function runKafkaCommand(args: string[]): Promise<number> {
  const [sub] = args;
  try {
    switch (sub) {
      case 'start': {
        const r = await startLocalKafka({ onEvent: progress });
        console.log(r.alreadyRunning ? `Kafka already running at ${r.brokers} (pid ${r.pid})` : `Kafka started at ${r.brokers} (pid ${r.pid}) in ${r.startupMs} ms; log: ${r.logFile}`);
        return 0;
      }
      case 'stop': {
        const r = await stopLocalKafka({ onEvent: progress });
        console.log(r.wasRunning ? `Kafka stopped (pid ${r.pid ?? '?'}${r.forced ? ', killed after timeout' : ''})` : 'Kafka was not running');
        return 0;
      }
      case 'status': {
        const s = await localKafkaStatus();
        console.log(s.running ? `running at ${s.brokers} (pid ${s.pid})` : s.pid ? `starting (pid ${s.pid})` : 'not running');
        console.log(`log: ${s.logFile}`);
        return s.running ? 0 : 3;
      }
      case 'fetch': {
        const r = await fetchKafkaJars({ onEvent: progress });
        console.log(JSON.stringify(r));
        return 0;
      }
      default:
        console.error('usage: tributary kafka start|stop|status|fetch');
        return 1;
    }
  } catch (err) {
    if (err instanceof LocalKafkaError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}
