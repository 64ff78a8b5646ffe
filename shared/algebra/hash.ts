/**
 * 64-bit hashing for sketches. A hash is two uint32 halves because BigInt arithmetic is an
 * order of magnitude slower than 32-bit `Math.imul` math on the hot path (one hash per event).
 */
export interface Hash64 {
  /** High 32 bits, unsigned. */
  hi: number;
  /** Low 32 bits, unsigned. */
  lo: number;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
// Two unrelated seeds give two MurmurHash3 lanes; the HLL index comes from `hi` and most of
// the rank bits from `lo`, so the halves must not be the same function of the input.
const SEED_HI = 0x9747b28c;
const SEED_LO = 0x3c6ef372;

const utf8 = new TextEncoder();
// Reused across calls: hashing is synchronous, and a fresh buffer per event is the main cost.
let scratch = new Uint8Array(256);

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixBlock(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixState(h: number, k: number): number {
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3 x86_32 of `bytes[0, length)` run with two seeds in one pass.
 * Exported for test vectors; callers hash strings with {@link hash64}.
 */
export function murmur3x2(bytes: Uint8Array, length: number, seedHi: number, seedLo: number): Hash64 {
  let h1 = seedHi | 0;
  let h2 = seedLo | 0;
  const blockEnd = length & ~3;
  let i = 0;
  for (; i < blockEnd; i += 4) {
    const k = mixBlock(
      (bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24),
    );
    h1 = mixState(h1, k);
    h2 = mixState(h2, k);
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= (bytes[i + 2] as number) << 16;
    if (tail >= 2) k ^= (bytes[i + 1] as number) << 8;
    k ^= bytes[i] as number;
    k = mixBlock(k);
    h1 ^= k;
    h2 ^= k;
  }
  return { hi: fmix32(h1 ^ length), lo: fmix32(h2 ^ length) };
}

/**
 * Good-quality 64-bit hash of a string's UTF-8 bytes (two MurmurHash3 x86_32 lanes).
 * @example hllAdd(users, hash64(deviceId))
 */
export function hash64(input: string): Hash64 {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (input.length * 3 > scratch.length) scratch = new Uint8Array(Math.max(input.length * 3, scratch.length * 2));
  const { written } = utf8.encodeInto(input, scratch);
  return murmur3x2(scratch, written, SEED_HI, SEED_LO);
}

const HEX16 = /^[0-9a-fA-F]{16}/;

/**
 * Takes the first 16 hex chars of an already-uniform digest (HMAC pseudonyms) as the hash:
 * rehashing a uniform value buys nothing.
 * @throws RangeError when `hex` does not start with 16 hex digits (a programmer error).
 * @example hash64FromHex(await pseudonymize(userId))
 */
export function hash64FromHex(hex: string): Hash64 {
  if (!HEX16.test(hex)) throw new RangeError(`hash64FromHex: expected at least 16 hex digits, got ${JSON.stringify(hex.slice(0, 20))}`);
  return { hi: Number.parseInt(hex.slice(0, 8), 16), lo: Number.parseInt(hex.slice(8, 16), 16) };
}
