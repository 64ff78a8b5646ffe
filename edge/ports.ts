/**
 * The edge's own port types. "Send to the pipeline" is `PipelineSink`
 * (shared/ports/pipeline-sink.ts), which the gateway implements too.
 */
import type { RejectedRecord } from '../schemas/rejected-record.ts';

export type { RejectedRecord };

/** Structured operational events (`event` in snake_case), for the entry's logger. */
export type EdgeLog = (fields: { event: string; [key: string]: unknown }) => void;
