import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createInsertDir, removeDeadInsertDirs } from '../../../core/clickhouse/row-binary-insert.ts';

describe('RowBinary insert folders', () => {
  it('carry the pid; a start removes those of dead processes and keeps live ones and other files', () => {
    const parent = mkdtempSync(join(tmpdir(), 'trib-insert-dirs-'));
    const live = createInsertDir(parent, 111);
    const dead = createInsertDir(parent, 222);
    mkdirSync(join(parent, 'tributary-inserts-abcdef')); // no pid: not ours to judge
    mkdirSync(join(parent, 'something-else-333-x'));
    expect(live.path).toMatch(/tributary-inserts-111-/);
    const removed = removeDeadInsertDirs(parent, (pid) => pid === 111);
    expect(removed).toEqual([dead.path.slice(parent.length + 1)]);
    expect(readdirSync(parent).sort()).toEqual([live.path.slice(parent.length + 1), 'something-else-333-x', 'tributary-inserts-abcdef'].sort());
    live.release();
    expect(existsSync(live.path)).toBe(false);
  });
});
