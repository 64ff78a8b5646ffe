import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EdgeLog } from '../ports.ts';

/**
 * `edge-<hostname>-<128 random bits, hex>`: a fresh source per process, so sequences never
 * collide, and one no other Kafka client can guess in advance to pre-empt its sequences or hold
 * its watermark (ADR 0015; Kafka ACLs decide who may produce at all, docs/SECURITY.md).
 */
export function defaultSourceId(): string {
  return `edge-${hostname()}-${randomBytes(16).toString('hex')}`;
}

/** JSON lines on stderr, except the routine `flushed`. */
export const defaultLog: EdgeLog = (fields) => {
  if (fields.event === 'flushed') return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'edge', ...fields })}\n`);
};
