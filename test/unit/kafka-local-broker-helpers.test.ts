import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { coordinatorPartition, javaStringHashCode, keysCoveringPartitions } from '../../tools/kafka-local/coordinator-partitions.ts';
import { javaMajorVersion } from '../../tools/kafka-local/kafka-jars.ts';
import { KAFKA_VERSION, resolveLocalKafkaConfig } from '../../tools/kafka-local/local-kafka-config.ts';

describe('coordinatorPartition (the broker formula: abs(hashCode) % partitions)', () => {
  it("matches Java's String.hashCode", () => {
    expect(javaStringHashCode('')).toBe(0);
    expect(javaStringHashCode('hello')).toBe(99162322);
    expect(javaStringHashCode('Aa')).toBe(javaStringHashCode('BB'));
    expect(javaStringHashCode('tributary')).toBe(-778537550);
  });

  it('maps negative hashes through abs, and Integer.MIN_VALUE to 0 as Kafka does', () => {
    expect(coordinatorPartition('tributary', 8)).toBe(778537550 % 8);
    expect(javaStringHashCode('polygenelubricants')).toBe(-2147483648);
    expect(coordinatorPartition('polygenelubricants', 8)).toBe(0);
  });

  it('finds one key per partition, in partition order', () => {
    const keys = keysCoveringPartitions(8, 'warmup');
    expect(keys.map((key) => coordinatorPartition(key, 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('javaMajorVersion', () => {
  it('reads modern and pre-9 version strings', () => {
    expect(javaMajorVersion('openjdk version "17.0.15" 2025-04-15')).toBe(17);
    expect(javaMajorVersion('openjdk version "21" 2023-09-19')).toBe(21);
    expect(javaMajorVersion('java version "1.8.0_392"')).toBe(8);
    expect(javaMajorVersion('something else')).toBeUndefined();
  });
});

describe('resolveLocalKafkaConfig', () => {
  it('defaults under $TRIBUTARY_CACHE_DIR, port 9092, controller 9093', () => {
    const config = resolveLocalKafkaConfig({ env: { TRIBUTARY_CACHE_DIR: '/cache' } });
    expect(config).toMatchObject({
      cacheDir: '/cache',
      libDir: join('/cache', `kafka-${KAFKA_VERSION}`, 'lib'),
      dataDir: join('/cache', 'kafka-data'),
      logFile: join('/cache', 'kafka-data', 'kafka.log'),
      port: 9092,
      controllerPort: 9093,
      brokers: '127.0.0.1:9092',
      javaBin: 'java',
    });
  });

  it('puts the controller next to a custom port and honours JAVA_HOME', () => {
    const config = resolveLocalKafkaConfig({ port: 19092, env: { TRIBUTARY_CACHE_DIR: '/cache', JAVA_HOME: '/jdk' } });
    expect(config.controllerPort).toBe(19093);
    expect(config.javaBin).toBe(join('/jdk', 'bin', 'java'));
  });

  it('falls back to ~/.cache/tributary', () => {
    expect(resolveLocalKafkaConfig({ env: {} }).cacheDir).toMatch(/[/\\]\.cache[/\\]tributary$/);
  });

  it('points at the kafka/pom.xml shipped with the repository', () => {
    expect(resolveLocalKafkaConfig({ env: {} }).pomPath).toMatch(/[/\\]kafka[/\\]pom\.xml$/);
  });
});
