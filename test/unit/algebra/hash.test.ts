import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { hash64, hash64FromHex } from '../../../shared/algebra/index.ts';
import { murmur3x2 } from '../../../shared/algebra/hash.ts';

describe('murmur3x2', () => {
  // Published MurmurHash3 x86_32 vectors: both lanes are plain MurmurHash3 with their seed.
  const vectors: Array<[string, number, number]> = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ];
  it.each(vectors)('matches MurmurHash3 x86_32 for %j seed %i', (input, seed, expected) => {
    const bytes = new TextEncoder().encode(input);
    const h = murmur3x2(bytes, bytes.length, seed, seed);
    expect(h.hi).toBe(expected);
    expect(h.lo).toBe(expected);
  });
});

describe('hash64', () => {
  it('returns two uint32 halves and is deterministic', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const h = hash64(s);
        expect(Number.isInteger(h.hi) && h.hi >= 0 && h.hi <= 0xffffffff).toBe(true);
        expect(Number.isInteger(h.lo) && h.lo >= 0 && h.lo <= 0xffffffff).toBe(true);
        expect(hash64(s)).toEqual(h);
      }),
    );
  });

  it('hashes UTF-8 bytes, so long and non-ASCII strings work', () => {
    const long = 'ü🌍'.repeat(5000);
    expect(hash64(long)).toEqual(hash64(long));
    expect(hash64('é')).not.toEqual(hash64('e'));
    const bytes = new TextEncoder().encode('🌍');
    expect(hash64('🌍')).toEqual(murmur3x2(bytes, bytes.length, 0x9747b28c, 0x3c6ef372));
  });

  it('sets each of the 64 bits about half the time and has no collisions on 100k keys', () => {
    const n = 100_000;
    const ones = new Array<number>(64).fill(0);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const h = hash64(`user-${i}`);
      seen.add(`${h.hi}:${h.lo}`);
      for (let b = 0; b < 32; b++) {
        if ((h.hi >>> b) & 1) ones[32 + b]! += 1;
        if ((h.lo >>> b) & 1) ones[b]! += 1;
      }
    }
    expect(seen.size).toBe(n);
    // 5 standard deviations of a fair coin over n draws.
    const tolerance = 5 * Math.sqrt(n) * 0.5;
    for (const c of ones) expect(Math.abs(c - n / 2)).toBeLessThan(tolerance);
  });
});

describe('hash64FromHex', () => {
  it('takes the first 16 hex digits', () => {
    expect(hash64FromHex('0123456789abcdefFFFF')).toEqual({ hi: 0x01234567, lo: 0x89abcdef });
    expect(hash64FromHex('FFFFFFFF00000000')).toEqual({ hi: 0xffffffff, lo: 0 });
  });

  it('rejects input that is not 16 hex digits (programmer error)', () => {
    expect(() => hash64FromHex('0123')).toThrow(RangeError);
    expect(() => hash64FromHex('0123456789abcdeg')).toThrow(RangeError);
  });
});
