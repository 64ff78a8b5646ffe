import { describe, expect, it } from 'vitest';
import { DEFAULT_QUERY_LIMITS, exceededLimit, limitSettings } from '../../../core/query/limits.ts';

describe('limitSettings', () => {
  it('sets every limit with throwing overflow modes', () => {
    expect(limitSettings(DEFAULT_QUERY_LIMITS)).toBe(
      "SETTINGS max_execution_time = 10, timeout_overflow_mode = 'throw', max_memory_usage = 1073741824, max_result_rows = 100000, result_overflow_mode = 'throw'",
    );
    expect(limitSettings({ maxExecutionMs: 1500, maxMemoryBytes: 0, maxResultRows: 0 })).toBe("SETTINGS max_execution_time = 1.5, timeout_overflow_mode = 'throw'");
    expect(limitSettings({ maxExecutionMs: 250, maxMemoryBytes: 0, maxResultRows: 0 })).toBe("SETTINGS max_execution_time = 0.25, timeout_overflow_mode = 'throw'");
  });

  it('leaves a limit of 0 to the ClickHouse user profile, and all of them: no clause', () => {
    expect(limitSettings({ maxExecutionMs: 0, maxMemoryBytes: 0, maxResultRows: 0 })).toBe('');
  });

  it('stays above the largest result the API asks for', () => {
    // MAX_BUCKETS points of a timeseries, and the status rows of the same buckets.
    expect(DEFAULT_QUERY_LIMITS.maxResultRows).toBeGreaterThan(10_080);
  });
});

describe('exceededLimit', () => {
  it.each([
    [{ type: 'TIMEOUT_EXCEEDED' }, 'time'],
    [{ type: 'MEMORY_LIMIT_EXCEEDED' }, 'memory'],
    [{ type: 'TOO_MANY_ROWS_OR_BYTES' }, 'result_rows'],
    [{ type: 'UNKNOWN_TABLE' }, undefined],
    [new Error('socket hang up'), undefined],
    [null, undefined],
  ])('%j -> %s', (err, kind) => expect(exceededLimit(err)).toBe(kind));
});
