import { logLevel, type LogEntry } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaLogCreator, kafkaLogLine, type KafkaLogLine } from '../../../core/kafka/client.ts';
import { createPipelineProducer } from '../../../core/kafka/pipeline-producer.ts';
import { createKafkaClient } from '../../../core/kafka/client.ts';

const entry = (level: logLevel, namespace: string, log: Record<string, unknown>): LogEntry => ({
  namespace,
  level,
  label: logLevel[level],
  log: { timestamp: '2026-12-06T00:00:00.000Z', logger: 'kafkajs', message: '', ...log },
});

describe('kafkajs log lines in the structured log', () => {
  it('gives known messages an event key, keeps their fields in snake_case and drops the stack', () => {
    const line = kafkaLogLine(
      entry(logLevel.ERROR, 'Runner', { message: 'Error when calling eachBatch', groupId: 'tributary-aggregator', memberId: 'm-1', error: 'checkpoint missing', stack: 'Error: ...\n at x', retryCount: 2 }),
    );
    expect(line).toEqual({
      level: 'error',
      fields: { event: 'kafka_each_batch_failed', kafka_namespace: 'Runner', message: 'Error when calling eachBatch', group_id: 'tributary-aggregator', member_id: 'm-1', error: 'checkpoint missing', retry_count: 2 },
    });
  });

  it('maps connection errors and consumer crashes', () => {
    expect(kafkaLogLine(entry(logLevel.ERROR, 'Connection', { message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', broker: '127.0.0.1:9092' }))?.fields.event).toBe('kafka_connection_error');
    expect(kafkaLogLine(entry(logLevel.ERROR, 'Consumer', { message: 'Crash: KafkaJSNumberOfRetriesExceeded: ...' }))?.fields.event).toBe('kafka_consumer_crashed');
    expect(kafkaLogLine(entry(logLevel.ERROR, 'BrokerPool', { message: 'Failed to connect to seed broker, trying another broker from the list: ...' }))?.fields.event).toBe('kafka_broker_unreachable');
  });

  it('writes error objects as their message', () => {
    const line = kafkaLogLine(entry(logLevel.ERROR, 'Runner', { message: 'Error when calling eachBatch', error: new Error('checkpoint 7 missing'), partition: 3 }));
    expect(line?.fields).toMatchObject({ error: 'checkpoint 7 missing', partition: 3 });
  });

  it('names unknown messages by level', () => {
    expect(kafkaLogLine(entry(logLevel.WARN, 'Cluster', { message: 'something new' }))).toEqual({
      level: 'warn',
      fields: { event: 'kafka_client_warning', kafka_namespace: 'Cluster', message: 'something new' },
    });
    expect(kafkaLogLine(entry(logLevel.ERROR, 'Cluster', { message: 'something else' }))?.fields.event).toBe('kafka_client_error');
  });

  it('drops the EoS warning of bounded retries and the partitioner notice (replaced by our own event and configuration)', () => {
    expect(kafkaLogLine(entry(logLevel.WARN, 'Producer', { message: 'Limiting retries for the idempotent producer may invalidate EoS guarantees' }))).toBeUndefined();
    expect(kafkaLogLine(entry(logLevel.WARN, '', { message: 'KafkaJS v2.0.0 switched default partitioner. To retain the same partitioning behavior ...' }))).toBeUndefined();
  });

  it('passes mapped lines to the sink through the logCreator kafkajs calls', () => {
    const lines: KafkaLogLine[] = [];
    const log = kafkaLogCreator((l) => lines.push(l))(logLevel.WARN);
    log(entry(logLevel.WARN, 'Producer', { message: 'Limiting retries for the idempotent producer may invalidate EoS guarantees' }));
    log(entry(logLevel.ERROR, 'Connection', { message: 'Connection timeout', broker: 'b:1' }));
    expect(lines.map((l) => l.fields.event)).toEqual(['kafka_connection_timeout']);
  });

  it('the pipeline producer logs its retry bound once as our event, and kafkajs says nothing at creation', () => {
    const lines: KafkaLogLine[] = [];
    const sink = (l: KafkaLogLine): void => void lines.push(l);
    // No connection is made: creating the client and the producer only configures them.
    const kafka = createKafkaClient({ brokers: ['127.0.0.1:1'], clientId: 'unit', log: sink, retry: { retries: 3 } });
    createPipelineProducer({ kafka, topics: { partials: 'p', rejected: 'r' }, log: sink });
    expect(lines).toEqual([{ level: 'info', fields: expect.objectContaining({ event: 'kafka_producer_retries_bounded', retries: 3 }) as unknown }]);
  });
});
