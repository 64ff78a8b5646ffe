import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';

describe('EDGE_PROCESSES', () => {
  it('defaults to one edge process', () => {
    const r = parseCoreConfig({});
    expect(r.ok && r.config.edgeProcesses).toBe(1);
  });

  it('takes a process count', () => {
    const r = parseCoreConfig({ EDGE_PROCESSES: '4' });
    expect(r.ok && r.config.edgeProcesses).toBe(4);
  });

  it.each(['0', '-1', 'two', '1.5', '1000'])('refuses %s with a message naming the variable', (value) => {
    const r = parseCoreConfig({ EDGE_PROCESSES: value });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.join('\n')).toContain('EDGE_PROCESSES');
  });
});
