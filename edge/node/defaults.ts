import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EdgeLog } from '../ports.ts';

/** `edge-<hostname>-<random>`: a fresh source per process, so sequences never collide. */
export function defaultSourceId(): string {
  return `edge-${hostname()}-${randomBytes(4).toString('hex')}`;
}

/** JSON lines on stderr, except the routine `flushed`. */
export const defaultLog: EdgeLog = (fields) => {
  if (fields.event === 'flushed') return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'edge', ...fields })}\n`);
};
