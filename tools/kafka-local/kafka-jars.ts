import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KAFKA_VERSION, resolveLocalKafkaConfig, type LocalKafkaConfig, type LocalKafkaOptions } from './local-kafka-config.ts';
import { LocalKafkaError, USE_EXISTING_BROKER_HINT } from './local-kafka-error.ts';
import { runCommand } from '../../core/os-probes.ts';

export interface FetchKafkaJarsResult {
  libDir: string;
  /** False when the cache was already complete and Maven was not run. */
  fetched: boolean;
  fetchMs: number;
  jarCount: number;
}

const MIN_JAVA_MAJOR = 17;

/**
 * Ensures the Kafka broker jars are in `<cacheDir>/kafka-<version>/lib`, running Maven once
 * (kafka/pom.xml) into an empty cache. A marker file makes an interrupted fetch start over.
 *
 * @example
 * const { libDir } = await fetchKafkaJars({ cacheDir: '/tmp/tributary-cache' });
 */
export async function fetchKafkaJars(opts: LocalKafkaOptions = {}): Promise<FetchKafkaJarsResult> {
  const config = resolveLocalKafkaConfig(opts);
  const started = Date.now();
  if (existsSync(config.libMarker)) {
    return { libDir: config.libDir, fetched: false, fetchMs: 0, jarCount: countJars(config.libDir) };
  }
  await assertJavaAvailable(config);
  config.onEvent('kafka_jars_fetch_started', { kafka_version: KAFKA_VERSION, lib_dir: config.libDir });

  // Fetch into a private folder and rename it into place, so a concurrent or interrupted
  // fetch never leaves a half-filled lib/ that looks complete.
  const staging = `${config.libDir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(dirname(config.libDir), { recursive: true });
  const result = await runCommand(config.mvnBin, [
    '-q', '-B', '-Dstyle.color=never',
    '-f', config.pomPath,
    `-Dkafka.lib.dir=${staging}`,
    'dependency:copy-dependencies',
  ]);
  if (result.spawnError?.code === 'ENOENT') {
    rmSync(staging, { recursive: true, force: true });
    throw new LocalKafkaError(
      'maven_missing',
      `Maven (mvn) is needed once to download the Kafka ${KAFKA_VERSION} jars: install maven ` +
        `(apt-get install maven), or copy the jars into ${config.libDir} and create ${config.libMarker}, ` +
        USE_EXISTING_BROKER_HINT,
      { cause: result.spawnError },
    );
  }
  if (result.exitCode !== 0) {
    rmSync(staging, { recursive: true, force: true });
    const output = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-20).join('\n');
    throw new LocalKafkaError(
      'fetch_failed',
      `Downloading the Kafka ${KAFKA_VERSION} jars with Maven failed (exit ${String(result.exitCode)}). ` +
        `Check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml), then retry; ` +
        `${USE_EXISTING_BROKER_HINT}.\n${output}`,
      { cause: result.spawnError },
    );
  }
  writeFileSync(join(staging, '.tributary-complete'), `kafka ${KAFKA_VERSION}\n`);
  if (existsSync(config.libMarker)) {
    // Another process completed the same fetch meanwhile (and may be running from it): use theirs.
    rmSync(staging, { recursive: true, force: true });
  } else {
    rmSync(config.libDir, { recursive: true, force: true }); // incomplete leftovers only
    renameSync(staging, config.libDir);
  }
  const fetchMs = Date.now() - started;
  const jarCount = countJars(config.libDir);
  config.onEvent('kafka_jars_fetched', { lib_dir: config.libDir, jar_count: jarCount, fetch_ms: fetchMs });
  return { libDir: config.libDir, fetched: true, fetchMs, jarCount };
}

/** Throws `java_missing` / `java_too_old` with the install hint when no usable JVM is found. */
export async function assertJavaAvailable(config: LocalKafkaConfig): Promise<void> {
  const result = await runCommand(config.javaBin, ['-version']);
  if (result.spawnError !== undefined || result.exitCode !== 0) {
    throw new LocalKafkaError(
      'java_missing',
      `Java ${MIN_JAVA_MAJOR}+ is required to run the local Kafka broker: install openjdk-17-jre-headless, ` +
        `${USE_EXISTING_BROKER_HINT} (tried '${config.javaBin}'; set JAVA_HOME to use another JVM).`,
      { cause: result.spawnError },
    );
  }
  const major = javaMajorVersion(result.stderr);
  if (major !== undefined && major < MIN_JAVA_MAJOR) {
    throw new LocalKafkaError(
      'java_too_old',
      `Java ${MIN_JAVA_MAJOR}+ is required to run the local Kafka broker, found Java ${major} ('${config.javaBin}'): ` +
        `install openjdk-17-jre-headless and point JAVA_HOME at it, ${USE_EXISTING_BROKER_HINT}.`,
    );
  }
}

/** `java -version` prints `version "17.0.15"` or, before Java 9, `version "1.8.0_392"`. */
export function javaMajorVersion(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (match?.[1] === undefined) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first;
}

function countJars(libDir: string): number {
  return readdirSync(libDir).filter((name) => name.endsWith('.jar')).length;
}
