import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { classifyClickHouseError } from '../../core/clickhouse/error-class.ts';
import { openTestClickHouse } from './helpers/aggregator-harness.ts';

// The classifier against the real engine: the errors it throws carry the codes the classifier
// reads (chdb reshapes its native errors into @clickhouse/client's ClickHouseError).
let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestClickHouse('trib-ch-errors');
});
afterAll(async () => {
  await ch?.close();
});

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('ClickHouse errors of the real engine', () => {
  it('classifies a missing table, a missing column and malformed rows as permanent', async () => {
    const missingTable = await failure(() => ch.insertRowBinary({ table: 'no_such_table', columns: [['a', 'String']], rows: new Uint8Array([1, 65]) }));
    expect(classifyClickHouseError(missingTable)).toMatchObject({ kind: 'permanent', code: '60', type: 'UNKNOWN_TABLE' });
    const missingColumn = await failure(() => ch.insertRowBinary({ table: 'partition_progress', columns: [['no_such_column', 'UInt16']], rows: new Uint8Array([1, 2]) }));
    expect(classifyClickHouseError(missingColumn)).toMatchObject({ kind: 'permanent', code: '16', type: 'NO_SUCH_COLUMN_IN_TABLE' });
    const truncated = await failure(() =>
      ch.insertRowBinary({ table: 'partition_progress', columns: [['partition', 'UInt16'], ['watermark', "DateTime64(3, 'UTC')"], ['updated_at', "DateTime64(3, 'UTC')"], ['version', 'UInt64']], rows: new Uint8Array([1, 2, 3]) }),
    );
    expect(classifyClickHouseError(truncated)).toMatchObject({ kind: 'permanent', type: 'CANNOT_READ_ALL_DATA' });
    const jsonInsert = await failure(() => ch.client.insert({ table: 'no_such_table', values: [{ a: 1 }], format: 'JSONEachRow' }));
    expect(classifyClickHouseError(jsonInsert)).toMatchObject({ kind: 'permanent', type: 'UNKNOWN_TABLE' });
  });
});
