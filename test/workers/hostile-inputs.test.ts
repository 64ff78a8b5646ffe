import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inflateGzip } from '../../edge/body/read-body.ts';
import { expectedOn, gzipBomb, HOSTILE_CASES, outcomeOf, toRequest } from '../support/hostile-cases.ts';
import { drainShards, fakeGateway, worker } from './helpers.ts';

// The hostile-input table (test/support/hostile-cases.ts) against the Workers edge inside
// workerd: the same status and error code as on Node and Deno, or the difference the table lists.
describe('hostile inputs on the Workers edge', () => {
  // The shards' alarms flush what the cases store: to a fake gateway, not to the network.
  let gateway: ReturnType<typeof fakeGateway> | undefined;
  beforeAll(async () => {
    await drainShards();
    gateway = fakeGateway();
  });
  afterAll(async () => {
    gateway?.restore();
    await drainShards();
  });

  it.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const expected = expectedOn(c, 'workers');
    const res = await worker().fetch(toRequest('http://edge.test', await c.build()));
    expect(await outcomeOf(res, expected)).toEqual({ ...expected, json: true });
    // Building the 64 MiB bomb takes about a second, more on a busy machine.
  }, 30_000);

  it('stops inflating a gzip bomb at the cap: a few KiB of a 300 KiB bomb are ever decompressed', async () => {
    const bomb = await gzipBomb(300 * 1024 * 1024);
    const result = await inflateGzip(bomb, 512 * 1024);
    expect(result.kind).toBe('over');
    expect(bomb.byteLength).toBeGreaterThan(250_000);
    // 512 KiB of output needs about 0.5 KiB of this input; workerd takes up to 64 KiB of 1 KiB slices ahead of the reader.
    expect(result.fed).toBeLessThan(128 * 1024);
    // Compressing 300 MiB to build the bomb takes seconds on a busy machine.
  }, 60_000);
});
