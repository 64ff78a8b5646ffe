import type { AggregatorStats } from '../../core/aggregator/kafka-runner.ts';

/** What the aggregator host sends its parent over IPC. */
export type HostMessage = { type: 'ready'; port: number };

/** `GET /state` of the aggregator host's control channel. */
export interface HostState {
  pid: number;
  instances: number;
  clickhouseDown: boolean;
  refusedWrites: number;
  stats: AggregatorStats[];
  partitions: Array<{ partition: number; epoch: number; committedOffset: string | null; openWindows: number }>;
}

/** `POST /query`: a parameterized read on the host's ClickHouse client. */
export interface QueryRequest {
  query: string;
  params?: Record<string, unknown>;
}
