import type { ClickHouse } from '../../core/clickhouse/client.ts';
import type { InsertRowBinary } from '../../core/clickhouse/row-binary-insert.ts';

/** A ClickHouse whose every call fails while `down` is set, as an unreachable server's would. */
export interface WriteSwitch {
  readonly clickhouse: ClickHouse;
  down: boolean;
  /** Calls refused so far. */
  readonly refused: number;
}

const CLIENT_CALLS = new Set<PropertyKey>(['insert', 'query', 'command', 'exec']);

function unavailable(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123 (ClickHouse is down: chaos fault)'), { code: 'ECONNREFUSED' });
}

/**
 * The switch the harness puts in front of the aggregators' ClickHouse (writer and checkpoint
 * store alike): the engine stays real; while `down`, inserts, queries and commands are refused
 * before they reach it. The checker reads through the unwrapped client.
 */
export function createWriteSwitch(target: ClickHouse): WriteSwitch {
  const sw = { down: false, refused: 0 };
  const refuse = (): Promise<never> => {
    sw.refused++;
    return Promise.reject(unavailable());
  };
  const client = new Proxy(target.client, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      // Methods run on the real client: it keeps private state a proxy receiver cannot reach.
      const bound = (value as (...args: unknown[]) => unknown).bind(obj);
      if (!CLIENT_CALLS.has(prop)) return bound;
      return (...args: unknown[]) => (sw.down ? refuse() : bound(...args));
    },
  });
  const insertRowBinary: InsertRowBinary = (params) => (sw.down ? refuse() : target.insertRowBinary(params));
  const clickhouse: ClickHouse = { ...target, client, insertRowBinary, close: () => target.close() };
  return {
    clickhouse,
    get down() {
      return sw.down;
    },
    set down(value: boolean) {
      sw.down = value;
    },
    get refused() {
      return sw.refused;
    },
  };
}
