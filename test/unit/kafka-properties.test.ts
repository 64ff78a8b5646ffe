import { describe, expect, it } from 'vitest';
import {
  clusterIdFromBytes,
  parseProperties,
  plaintextPortOf,
  renderLog4jProperties,
  renderServerProperties,
} from '../../tools/kafka-local/kafka-properties.ts';

describe('renderServerProperties', () => {
  const props = parseProperties(renderServerProperties({ port: 19092, controllerPort: 19093, logDir: '/data/kafka-logs' }));

  it('configures a single-node KRaft broker on loopback', () => {
    expect(Object.fromEntries(props)).toMatchObject({
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': '1@127.0.0.1:19093',
      listeners: 'PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:19092',
      'controller.listener.names': 'CONTROLLER',
      'log.dirs': '/data/kafka-logs',
    });
  });

  // Without these, InitProducerId / sendOffsets fail on one broker: the aggregator's
  // exactly-once path depends on them.
  it('sizes internal topics and ISR for one broker', () => {
    expect(Object.fromEntries(props)).toMatchObject({
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'min.insync.replicas': '1',
    });
  });

  it('auto-creates topics with 4 partitions and joins groups without delay', () => {
    expect(props.get('auto.create.topics.enable')).toBe('true');
    expect(props.get('num.partitions')).toBe('4');
    expect(props.get('group.initial.rebalance.delay.ms')).toBe('0');
  });

  it('takes the partition count of auto-created topics as an option', () => {
    const custom = parseProperties(renderServerProperties({ port: 1, controllerPort: 2, logDir: '/d', numPartitions: 12 }));
    expect(custom.get('num.partitions')).toBe('12');
  });

  it('escapes backslashes in paths, as Java properties require', () => {
    const windows = renderServerProperties({ port: 1, controllerPort: 2, logDir: 'C:\\kafka\\logs' });
    expect(windows).toContain('log.dirs=C:\\\\kafka\\\\logs');
  });
});

describe('plaintextPortOf', () => {
  it('reads the client port back from a rendered file', () => {
    expect(plaintextPortOf(renderServerProperties({ port: 29092, controllerPort: 29093, logDir: '/d' }))).toBe(29092);
  });

  it('is undefined when there is no PLAINTEXT listener', () => {
    expect(plaintextPortOf('listeners=CONTROLLER://127.0.0.1:9093\n')).toBeUndefined();
  });
});

describe('parseProperties', () => {
  it('skips comments and blank lines and keeps "=" inside values', () => {
    const parsed = parseProperties('# comment\n! also comment\n\ncluster.id = abc\nx=a=b\r\nnovalue\n');
    expect([...parsed]).toEqual([
      ['cluster.id', 'abc'],
      ['x', 'a=b'],
    ]);
  });
});

describe('clusterIdFromBytes', () => {
  it('encodes 16 bytes as 22 base64url characters', () => {
    const id = clusterIdFromBytes(new Uint8Array(16).fill(0xab));
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('never starts with "-", which the storage tool would read as a flag', () => {
    // 0xf8 = 0b111110_00: the first base64url digit is 62, '-'.
    const bytes = new Uint8Array(16).fill(0xf8);
    expect(Buffer.from(bytes).toString('base64url').startsWith('-')).toBe(true);
    expect(clusterIdFromBytes(bytes).startsWith('-')).toBe(false);
  });

  it('rejects other lengths', () => {
    expect(() => clusterIdFromBytes(new Uint8Array(8))).toThrow(RangeError);
  });
});

describe('renderLog4jProperties', () => {
  it('sends broker logs to stdout (the launcher redirects it to the log file)', () => {
    const log4j = parseProperties(renderLog4jProperties());
    expect(log4j.get('log4j.rootLogger')).toBe('INFO, stdout');
    expect(log4j.get('log4j.appender.stdout')).toBe('org.apache.log4j.ConsoleAppender');
  });
});
