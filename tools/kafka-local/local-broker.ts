/**
 * The domain of `tributary kafka start|stop|status|fetch`: a single-node KRaft Kafka 3.9 broker
 * on 127.0.0.1, started from Maven-fetched jars, detached from the calling process and
 * idempotent (a second start finds the first broker through its pid file).
 *
 * @example
 * const { brokers } = await startLocalKafka();          // '127.0.0.1:9092'
 * await stopLocalKafka();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answersMetadata, warmUpCoordinators } from './broker-readiness.ts';
import { assertJavaAvailable, fetchKafkaJars } from './kafka-jars.ts';
import { clusterIdFromBytes, plaintextPortOf, renderLog4jProperties, renderServerProperties } from './kafka-properties.ts';
import { resolveLocalKafkaConfig, type LocalKafkaConfig, type LocalKafkaOptions } from './local-kafka-config.ts';
import { LocalKafkaError, USE_EXISTING_BROKER_HINT } from './local-kafka-error.ts';
import { isBrokerProcess, isPortAccepting, isPortFree, isProcessAlive, runCommand, tailFile } from '../../core/os-probes.ts';
import { sleep } from '../../shared/time.ts';
import { withFileLock } from './file-lock.ts';

export { fetchKafkaJars, type FetchKafkaJarsResult } from './kafka-jars.ts';
export { KAFKA_VERSION, type LocalKafkaOptions } from './local-kafka-config.ts';
export { LocalKafkaError, type LocalKafkaErrorCode } from './local-kafka-error.ts';

export interface LocalKafkaStarted {
  brokers: string;
  pid: number;
  /** True when a broker for this data dir was already running (or starting) and was reused. */
  alreadyRunning: boolean;
  /** Until the broker answered `listTopics()`; for a reused broker, the time spent waiting on it. */
  startupMs: number;
  logFile: string;
}

export interface LocalKafkaStopped {
  wasRunning: boolean;
  pid?: number;
  /** True when the broker ignored SIGTERM for `stopTimeoutMs` and was SIGKILLed. */
  forced: boolean;
  stopMs: number;
}

export interface LocalKafkaStatus {
  /** The broker process is alive and its port accepts connections. */
  running: boolean;
  /** Present whenever the broker process is alive, including while it is still starting. */
  pid?: number;
  brokers?: string;
  logFile: string;
  dataDir: string;
}

const LOG_TAIL_LINES = 30;

/** Starts the local broker, or returns the one already running for the same data dir. */
export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafkaStarted> {
  const config = resolveLocalKafkaConfig(opts);
  mkdirSync(config.dataDir, { recursive: true });
  return withFileLock(config.lockFile, config.startTimeoutMs + 10_000, 'starting the local Kafka broker', async () => {
    const started = Date.now();
    const existingPid = runningBrokerPid(config);
    if (existingPid !== undefined) {
      const brokers = brokersOfRunningBroker(config);
      await waitUntilReady(config, brokers, existingPid, () => undefined, false);
      return { brokers, pid: existingPid, alreadyRunning: true, startupMs: Date.now() - started, logFile: config.logFile };
    }
    rmSync(config.pidFile, { force: true });

    await assertJavaAvailable(config);
    await assertPortsFree(config);
    const { libDir } = await fetchKafkaJars(opts);
    mkdirSync(config.kafkaLogDir, { recursive: true });
    writeFileSync(config.serverProperties, renderServerProperties({
      port: config.port,
      controllerPort: config.controllerPort,
      logDir: config.kafkaLogDir,
    }));
    writeFileSync(config.log4jProperties, renderLog4jProperties());
    await formatStorageIfNeeded(config, libDir);

    const child = launchBroker(config, libDir);
    let exit: string | undefined;
    child.once('exit', (code, signal) => (exit = signal === null ? `exit code ${String(code)}` : `signal ${signal}`));
    child.once('error', (error) => (exit = `could not run '${config.javaBin}': ${error.message}`));
    const pid = child.pid;
    if (pid === undefined) {
      throw new LocalKafkaError('broker_exited', `Could not start '${config.javaBin}' for the Kafka broker; check that it runs ('${config.javaBin} -version').`, { logFile: config.logFile });
    }
    writeFileSync(config.pidFile, `${pid}\n`);
    try {
      await waitUntilReady(config, config.brokers, pid, () => exit, true);
    } catch (error) {
      // Never leave a half-started 1 GB JVM behind that the pid file no longer tracks.
      if (exit === undefined) await terminate(pid, config.stopTimeoutMs);
      rmSync(config.pidFile, { force: true });
      throw error;
    }
    const startupMs = Date.now() - started;
    config.onEvent('kafka_started', { brokers: config.brokers, pid, startup_ms: startupMs, log_file: config.logFile });
    return { brokers: config.brokers, pid, alreadyRunning: false, startupMs, logFile: config.logFile };
  });
}

/** Stops the local broker (SIGTERM, then SIGKILL after `stopTimeoutMs`); a no-op if none runs. */
export async function stopLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafkaStopped> {
  const config = resolveLocalKafkaConfig(opts);
  const started = Date.now();
  const pid = runningBrokerPid(config);
  if (pid === undefined) {
    rmSync(config.pidFile, { force: true });
    return { wasRunning: false, forced: false, stopMs: 0 };
  }
  const forced = await terminate(pid, config.stopTimeoutMs);
  rmSync(config.pidFile, { force: true });
  const stopMs = Date.now() - started;
  config.onEvent('kafka_stopped', { pid, forced, stop_ms: stopMs });
  return { wasRunning: true, pid, forced, stopMs };
}

export async function localKafkaStatus(opts: LocalKafkaOptions = {}): Promise<LocalKafkaStatus> {
  const config = resolveLocalKafkaConfig(opts);
  const base = { logFile: config.logFile, dataDir: config.dataDir };
  const pid = runningBrokerPid(config);
  if (pid === undefined) return { running: false, ...base };
  const brokers = brokersOfRunningBroker(config);
  const port = Number(brokers.slice(brokers.lastIndexOf(':') + 1));
  return { running: await isPortAccepting(port), pid, brokers, ...base };
}

function runningBrokerPid(config: LocalKafkaConfig): number | undefined {
  if (!existsSync(config.pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(config.pidFile, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 && isBrokerProcess(pid, config.serverProperties) ? pid : undefined;
}

/** The running broker may have been started with another port than this call asks for. */
function brokersOfRunningBroker(config: LocalKafkaConfig): string {
  const port = existsSync(config.serverProperties)
    ? plaintextPortOf(readFileSync(config.serverProperties, 'utf8'))
    : undefined;
  return `127.0.0.1:${port ?? config.port}`;
}

async function assertPortsFree(config: LocalKafkaConfig): Promise<void> {
  for (const [port, role] of [[config.port, 'client'], [config.controllerPort, 'controller']] as const) {
    if (await isPortFree(port)) continue;
    throw new LocalKafkaError(
      'port_in_use',
      `Port ${port} on 127.0.0.1 (Kafka ${role} port) is already in use by a process this data dir ` +
        `(${config.dataDir}) did not start — another Kafka? Set KAFKA_BROKERS=127.0.0.1:${config.port} to use ` +
        `that broker, stop it, or choose other ports (port option; TRIBUTARY_TEST_KAFKA_PORT for tests).`,
    );
  }
}

async function formatStorageIfNeeded(config: LocalKafkaConfig, libDir: string): Promise<void> {
  if (existsSync(join(config.kafkaLogDir, 'meta.properties'))) return;
  const clusterId = clusterIdFromBytes(randomBytes(16));
  const result = await runCommand(config.javaBin, [
    ...jvmLoggingArgs(config),
    '-cp', join(libDir, '*'),
    'kafka.tools.StorageTool', 'format', '--ignore-formatted',
    '-t', clusterId,
    '-c', config.serverProperties,
  ]);
  if (result.exitCode !== 0) {
    throw new LocalKafkaError(
      'format_failed',
      `Formatting Kafka storage in ${config.kafkaLogDir} failed (exit ${String(result.exitCode)}). ` +
        `If the folder holds data from another Kafka version, delete ${config.dataDir} and retry.\n` +
        `${result.stdout}${result.stderr}`.trim(),
      { cause: result.spawnError },
    );
  }
  config.onEvent('kafka_storage_formatted', { cluster_id: clusterId, log_dir: config.kafkaLogDir });
}

function launchBroker(config: LocalKafkaConfig, libDir: string): ChildProcess {
  if (existsSync(config.logFile)) renameSync(config.logFile, `${config.logFile}.1`);
  const logFd = openSync(config.logFile, 'a');
  try {
    const child = spawn(config.javaBin, [
      '-Xms256m', `-Xmx${config.maxHeap}`,
      // kafka-run-class.sh defaults: short GC pauses keep request latency flat.
      '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35',
      '-XX:+ExplicitGCInvokesConcurrent', '-Djava.awt.headless=true',
      ...jvmLoggingArgs(config),
      '-cp', join(libDir, '*'), // expanded by the JVM, not a shell
      'kafka.Kafka', config.serverProperties,
    ], { cwd: config.dataDir, detached: true, stdio: ['ignore', logFd, logFd] });
    child.unref();
    return child;
  } finally {
    closeSync(logFd);
  }
}

function jvmLoggingArgs(config: LocalKafkaConfig): string[] {
  return [`-Dlog4j.configuration=file:${config.log4jProperties}`];
}

/**
 * Ready = the port accepts TCP, a client gets a metadata answer (the port opens earlier) and,
 * for a broker we just started, every group coordinator has loaded (see broker-readiness.ts).
 */
async function waitUntilReady(
  config: LocalKafkaConfig,
  brokers: string,
  pid: number,
  exited: () => string | undefined,
  warmUp: boolean,
): Promise<void> {
  const deadline = Date.now() + config.startTimeoutMs;
  const port = Number(brokers.slice(brokers.lastIndexOf(':') + 1));
  while (Date.now() < deadline) {
    const exit = exited() ?? (isProcessAlive(pid) ? undefined : 'process gone');
    if (exit !== undefined) {
      throw new LocalKafkaError(
        'broker_exited',
        `The Kafka broker exited during start-up (${exit}). Last ${LOG_TAIL_LINES} lines of ${config.logFile}:\n` +
          `${tailFile(config.logFile, LOG_TAIL_LINES)}\nFix the cause above, or delete ${config.dataDir} to start from scratch.`,
        { logFile: config.logFile },
      );
    }
    if ((await isPortAccepting(port)) && (await answersMetadata(brokers))) {
      if (!warmUp) return;
      config.onEvent('kafka_answering', { brokers, pid });
      if (await warmUpCoordinators(brokers, deadline)) return;
    }
    await sleep(250);
  }
  throw new LocalKafkaError(
    'start_timeout',
    `The Kafka broker (pid ${pid}) was not ready on ${brokers} after ${config.startTimeoutMs} ms and was stopped. ` +
      `Last ${LOG_TAIL_LINES} lines of ${config.logFile}:\n${tailFile(config.logFile, LOG_TAIL_LINES)}\n` +
      `On a slow machine raise the start timeout; ${USE_EXISTING_BROKER_HINT}.`,
    { logFile: config.logFile },
  );
}

/** SIGTERM (Kafka shuts down cleanly), SIGKILL after `timeoutMs`. Returns true if it had to kill. */
async function terminate(pid: number, timeoutMs: number): Promise<boolean> {
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return false;
    await sleep(100);
  }
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 50 && isProcessAlive(pid); i++) await sleep(100);
  if (isProcessAlive(pid)) {
    throw new LocalKafkaError('stop_failed', `The Kafka broker (pid ${pid}) survived SIGKILL; check it with 'ps -p ${pid}'.`);
  }
  return true;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
