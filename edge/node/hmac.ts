import { createHmac } from 'node:crypto';
import type { MacFactory } from '../../shared/salts.ts';

/**
 * HMAC-SHA-256 with node:crypto, synchronous. On Node, `crypto.subtle.sign` runs each call as a
 * thread-pool job (tens to hundreds of microseconds for a 40-byte message); createHmac costs a
 * few microseconds, which matters on pseudonym cache misses (every new user of an epoch).
 */
export const nodeHmac: MacFactory = async (key) => {
  const salt = Uint8Array.from(key);
  return { synchronous: true, sign: (message) => createHmac('sha256', salt).update(message).digest() };
};
