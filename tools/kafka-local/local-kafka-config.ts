import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS, readText, readWhole } from '../../shared/config/index.ts';

/** Keep in step with `kafka.version` in kafka/pom.xml: it names the jar cache folder. */
export const KAFKA_VERSION = '3.9.2';

export interface LocalKafkaOptions {
  /** Jar cache and default data dir parent. Default `$TRIBUTARY_CACHE_DIR` or `~/.cache/tributary`. */
  cacheDir?: string;
  /** Broker state: config, KRaft logs, pid file, log file. Default `<cacheDir>/kafka-data`. */
  dataDir?: string;
  /** PLAINTEXT port clients use. Default `$TRIBUTARY_KAFKA_PORT` or 9092. */
  port?: number;
  /** KRaft controller port. Default `port + 1` (9093). */
  controllerPort?: number;
  /** Java launcher. Default `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` on PATH. */
  javaBin?: string;
  /** Maven launcher, used once to fetch the jars. Default `mvn`. */
  mvnBin?: string;
  /** Broker JVM heap ceiling. Default `1g`. */
  maxHeap?: string;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Source of the defaults above; injectable for tests. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Progress events (`kafka_jars_fetch_started`, `kafka_storage_formatted`, ...) for a CLI to print. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export interface LocalKafkaConfig {
  cacheDir: string;
  libDir: string;
  libMarker: string;
  pomPath: string;
  dataDir: string;
  kafkaLogDir: string;
  serverProperties: string;
  log4jProperties: string;
  logFile: string;
  pidFile: string;
  lockFile: string;
  port: number;
  controllerPort: number;
  brokers: string;
  javaBin: string;
  mvnBin: string;
  maxHeap: string;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  onEvent: (event: string, fields: Record<string, unknown>) => void;
}

/** The one place the local-broker code reads the environment. */
export function resolveLocalKafkaConfig(opts: LocalKafkaOptions = {}): LocalKafkaConfig {
  const env = opts.env ?? process.env;
  const cacheDir = resolve(opts.cacheDir ?? readText(env, SETTINGS.TRIBUTARY_CACHE_DIR, []) ?? join(homedir(), '.cache', 'tributary'));
  const dataDir = resolve(opts.dataDir ?? join(cacheDir, 'kafka-data'));
  const libDir = join(cacheDir, `kafka-${KAFKA_VERSION}`, 'lib');
  const port = opts.port ?? localPort(env);
  const javaHome = nonEmpty(env.JAVA_HOME);
  return {
    cacheDir,
    libDir,
    libMarker: join(libDir, '.tributary-complete'),
    pomPath: fileURLToPath(new URL('../../kafka/pom.xml', import.meta.url)),
    dataDir,
    kafkaLogDir: join(dataDir, 'kafka-logs'),
    serverProperties: join(dataDir, 'server.properties'),
    log4jProperties: join(dataDir, 'log4j.properties'),
    logFile: join(dataDir, 'kafka.log'),
    pidFile: join(dataDir, 'kafka.pid'),
    lockFile: join(dataDir, 'start.lock'),
    port,
    controllerPort: opts.controllerPort ?? port + 1,
    brokers: `127.0.0.1:${port}`,
    javaBin: opts.javaBin ?? (javaHome === undefined ? 'java' : join(javaHome, 'bin', 'java')),
    mvnBin: opts.mvnBin ?? 'mvn',
    maxHeap: opts.maxHeap ?? '1g',
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 20_000,
    onEvent: opts.onEvent ?? (() => {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** `TRIBUTARY_KAFKA_PORT`: the local broker's port, so a second local pipeline (or a test) can run beside the first. */
function localPort(env: Record<string, string | undefined>): number {
  const errors: string[] = [];
  const port = readWhole(env, SETTINGS.TRIBUTARY_KAFKA_PORT, errors);
  if (errors.length > 0) throw new Error(`${errors.join('; ')} (the controller uses port + 1)`);
  return port;
}
