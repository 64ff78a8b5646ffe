/**
 * The options and the handle of a Node edge: one file both `startNodeEdge` (server.ts) and
 * `startNodeEdgeCluster` (cluster.ts) import, so neither imports the other for its types.
 */
import type { ComponentHealth } from '../../core/background.ts';
import type { KafkaSecurity } from '../../core/config/kafka-security.ts';
import type { PartialsRouting } from '../../core/kafka/partials-router.ts';
import type { SaltProvider } from '../../shared/salts.ts';
import type { EdgeConfig } from '../config.ts';
import type { PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import type { EdgeLog } from '../ports.ts';
import type { NodeEdgeHealth } from './cluster-protocol.ts';

export interface NodeEdgeOptions {
  config: EdgeConfig;
  /** Kafka bootstrap servers, `host:port`. */
  brokers: string[];
  /** TLS and SASL of the Kafka producer (`KAFKA_SSL`, `KAFKA_SASL_*`); default plaintext, no authentication. */
  kafkaSecurity?: KafkaSecurity;
  /** 0 picks a free port (see the returned `url`). */
  port: number;
  /** Interface to listen on. Default: all interfaces. */
  hostname?: string;
  /**
   * Default `edge-<hostname>-<random>`: a fresh source per process, so sequences never collide.
   * One given here must also name one process incarnation: a dead process's flush journal may
   * be re-sent under its source id later (ADR 0010, "The flush journal").
   */
  sourceId?: string;
  /** Default `{ partials: 'partials', rejected: 'rejected' }`. */
  topics?: { partials?: string; rejected?: string; partialsRouting?: PartialsRouting };
  /** Structured operational events. Default: JSON lines on stderr, except routine `flushed`. */
  log?: EdgeLog;
  /** Epoch salts; default derived from `PSEUDONYM_SALT` (see `createStaticSaltProvider`). */
  saltProvider?: SaltProvider;
  /**
   * A sink to use instead of Kafka (then `brokers` is ignored and no Kafka client is created):
   * for benchmarks of the edge alone and for tests.
   */
  sink?: PipelineSink;
  /**
   * Edge processes serving `port` (node:cluster; `EDGE_PROCESSES`). Default 1: this process is
   * the edge. With N > 1 this process only supervises N worker processes, each a complete edge
   * with its own source id (`<sourceId>-<n>`), Kafka producer, flush timer, caches and
   * `/health`; all share the retry dedup store in `DEDUP_DIR` (see `startNodeEdgeCluster`). `sink` and `saltProvider` cannot cross
   * a process boundary: pass `workerSetup` instead.
   */
  processes?: number;
  /**
   * With `processes > 1`: a module (path or file URL) each worker process imports; its
   * `nodeEdgeWorker` export ({@link NodeEdgeWorkerSetup}) returns that worker's `sink`,
   * `saltProvider` and `log`. Used by the benchmark (an in-memory sink per worker).
   */
  workerSetup?: string;
  /**
   * Components of the same process whose state `GET /health` reports next to the edge's own
   * (`tributary start`: the aggregator and the rejected-events sink). A `failed` one makes
   * `/health` answer 503.
   */
  components?: () => Record<string, ComponentHealth>;
  /** With `processes > 1`: a worker still closing this long after SIGTERM or the primary's close exits anyway. Default 10 s. */
  closeDeadlineMs?: number;
  /**
   * TEST ONLY, never set in production: called after Kafka acknowledged a journaled envelope and
   * before the acknowledgement is recorded in the dedup store (edge/node/flush-journal.ts).
   * test/integration/fixtures/edge-process.ts SIGKILLs its process here when
   * `TRIBUTARY_TEST_ONLY_SIGKILL_AFTER_KAFKA_ACK=1`: the crash the flush journal exists for, at
   * the one instant a test cannot hit from outside. Single-process edges only.
   */
  testOnlyAfterKafkaAck?: () => void;
}

/** What a `workerSetup` module gives one worker process: options that cannot be sent to it. */
export interface NodeEdgeWorkerExtras {
  sink?: PipelineSink;
  saltProvider?: SaltProvider;
  log?: EdgeLog;
  /** Runs after the worker's edge has closed (final flush done), before the process exits. */
  afterClose?: () => Promise<void> | void;
}

/** The `nodeEdgeWorker` export of a `workerSetup` module. */
export type NodeEdgeWorkerSetup = (worker: { index: number; sourceId: string }) => NodeEdgeWorkerExtras | Promise<NodeEdgeWorkerExtras>;

export interface RunningNodeEdge {
  url: string;
  /** The source id of this process; with `processes > 1`, the workers' ids are `<sourceId>-<n>`. */
  sourceId: string;
  /** `GET /health` of every edge process: one entry, or one per worker with `processes > 1`. */
  health(): Promise<NodeEdgeHealth[]>;
  /** Stops accepting requests, lets in-flight ones finish, flushes what is left, disconnects. */
  close(): Promise<void>;
}
