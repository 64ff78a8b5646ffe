import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultSourceId } from '../../../edge/node/defaults.ts';

describe('Node edge default source id', () => {
  it('carries 128 random bits, so no other producer can guess it in advance', () => {
    const ids = Array.from({ length: 50 }, () => defaultSourceId());
    for (const id of ids) expect(id).toMatch(new RegExp(`^edge-${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{32}$`));
    expect(new Set(ids).size).toBe(ids.length);
  });
});
