import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withFileLock } from '../../../tools/kafka-local/file-lock.ts';

describe('withFileLock', () => {
  it('creates the lock file\'s folder when it does not exist yet (a fresh machine without ~/.cache/tributary, issue #11)', async () => {
    const lockFile = join(mkdtempSync(join(tmpdir(), 'trib-lock-')), 'not', 'yet', 'kafka-data-test.lock');
    const result = await withFileLock(lockFile, 1000, 'testing', async () => existsSync(lockFile));
    expect(result).toBe(true);
    expect(existsSync(lockFile)).toBe(false);
  });
});
