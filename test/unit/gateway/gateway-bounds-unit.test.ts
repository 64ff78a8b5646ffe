import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { createNonceCache } from '../../../core/gateway/nonce-cache.ts';
import { createSequenceDedup } from '../../../core/gateway/sequence-dedup.ts';

describe('nonce cache', () => {
  it('refuses a nonce seen before, per edge', () => {
    const cache = createNonceCache({ capacityPerEdge: 10, ttlMs: 1000 });
    expect(cache.remember('a', 'n1', 100, 100)).toBe(true);
    expect(cache.remember('a', 'n1', 100, 100)).toBe(false);
    expect(cache.remember('b', 'n1', 100, 100)).toBe(true);
  });

  it('stays bounded, and raises a floor so an evicted nonce can never be replayed', () => {
    const cache = createNonceCache({ capacityPerEdge: 3, ttlMs: 60_000 });
    for (let i = 0; i < 10; i++) expect(cache.remember('a', `n${i}`, 1000 + i, 1000 + i)).toBe(true);
    expect(cache.size).toBe(3);
    // n0 was evicted, but its timestamp is at or below the floor: still refused.
    expect(cache.remember('a', 'n0', 1000, 1010)).toBe(false);
    expect(cache.remember('a', 'fresh', 1011, 1011)).toBe(true);
  });

  it('keeps refusing replays across many evictions (its arrival queue is compacted as it goes)', () => {
    const cache = createNonceCache({ capacityPerEdge: 50, ttlMs: 60_000 });
    for (let i = 0; i < 5000; i++) expect(cache.remember('a', `n${i}`, 1000 + i, 1000 + i)).toBe(true);
    expect(cache.size).toBe(50);
    expect(cache.remember('a', 'n4999', 5999, 6000)).toBe(false); // still remembered
    expect(cache.remember('a', 'n10', 1010, 6000)).toBe(false); // evicted long ago, below the floor
    expect(cache.remember('a', 'n5000', 6000, 6000)).toBe(true);
  });

  it('forgets nonces once their timestamp is outside the skew window', () => {
    const cache = createNonceCache({ capacityPerEdge: 100, ttlMs: 1000 });
    cache.remember('a', 'old', 0, 0);
    cache.remember('a', 'new', 5000, 5000);
    expect(cache.size).toBe(1);
  });
});

describe('sequence dedup', () => {
  it('treats any sequence at or below the highest produced one as a duplicate', () => {
    const d = createSequenceDedup({ maxSources: 10 });
    expect(d.isDuplicate('s', 5)).toBe(false);
    d.produced('s', 5);
    expect(d.isDuplicate('s', 5)).toBe(true);
    expect(d.isDuplicate('s', 4)).toBe(true);
    expect(d.isDuplicate('s', 6)).toBe(false);
    expect(d.isDuplicate('other', 1)).toBe(false);
  });

  it('remembers at most maxSources sources, least recently used evicted', () => {
    const d = createSequenceDedup({ maxSources: 2 });
    d.produced('a', 1);
    d.produced('b', 1);
    d.produced('a', 2);
    d.produced('c', 1);
    expect(d.sources).toBe(2);
    expect(d.isDuplicate('a', 2)).toBe(true);
    expect(d.isDuplicate('b', 1)).toBe(false);
  });
});

describe('gateway configuration', () => {
  it('parses GATEWAY_PORT and GATEWAY_SIGNING_KEYS (secrets may contain ":")', () => {
    const r = parseCoreConfig({ GATEWAY_PORT: '9000', GATEWAY_SIGNING_KEYS: 'workers-prod:abcdefghijklmnopqrstuvwxyz:0123456789, deno-1:0123456789abcdef0123456789abcdef' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.gateway.port).toBe(9000);
    expect([...r.config.gateway.signingKeys.keys()]).toEqual(['workers-prod', 'deno-1']);
    expect(r.config.gateway.signingKeys.get('workers-prod')).toBe('abcdefghijklmnopqrstuvwxyz:0123456789');
  });

  it('defaults to port 8082 and no keys, and names bad entries without echoing secrets', () => {
    const d = parseCoreConfig({});
    expect(d.ok && d.config.gateway.port).toBe(8082);
    expect(d.ok && d.config.gateway.signingKeys.size).toBe(0);
    const r = parseCoreConfig({ GATEWAY_SIGNING_KEYS: 'edge:short-secret,bad id:0123456789abcdef0123456789abcdef' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toContain('entry 1 has a secret shorter than 32');
    expect(r.errors.join('\n')).toContain('invalid edge id');
    expect(r.errors.join('\n')).not.toContain('short-secret');
  });

  it('reads the salt source and the salt epochs the gateway serves under, with the edge defaults', () => {
    const d = parseCoreConfig({});
    expect(d.ok && { source: d.config.saltSource, salts: d.config.salts }).toEqual({ source: 'clickhouse', salts: { epochMs: 86_400_000, retentionEpochs: 2 } });
    const r = parseCoreConfig({ SALT_SOURCE: 'gateway', SALT_EPOCH_MS: '3600000', SALT_RETENTION_EPOCHS: '48' });
    expect(r.ok && { source: r.config.saltSource, salts: r.config.salts }).toEqual({ source: 'gateway', salts: { epochMs: 3_600_000, retentionEpochs: 48 } });
    const bad = parseCoreConfig({ SALT_SOURCE: 'vault', SALT_EPOCH_MS: '90000' });
    expect(bad.ok ? [] : bad.errors).toEqual([
      expect.stringMatching(/^SALT_SOURCE="vault" is not valid: use "clickhouse" .* "static" .* "gateway"/),
      expect.stringMatching(/^SALT_EPOCH_MS=90000 must be a multiple of WINDOW_SIZE_MS=60000/),
    ]);
  });
});
