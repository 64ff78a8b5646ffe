import { describe, expect, it } from 'vitest';
import { trackSinkHealth } from '../../../edge/node/sink-health.ts';

describe('sink health from the outcome of sends', () => {
  it('is failing from the first failed send until a send succeeds', async () => {
    let down = false;
    const send = async (): Promise<void> => {
      if (down) throw new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    };
    let now = 1_000;
    const t = trackSinkHealth({ sink: { sendPartials: send, sendRejected: send }, now: () => now });
    await t.sink.sendPartials({ key: 'k', value: new Uint8Array() });
    expect(t.state()).toEqual({ status: 'ok', consecutive_failures: 0 });
    down = true;
    await expect(t.sink.sendPartials({ key: 'k', value: new Uint8Array() })).rejects.toThrow('ECONNREFUSED');
    now = 2_000;
    await expect(t.sink.sendRejected([])).rejects.toThrow();
    expect(t.state()).toEqual({ status: 'failing', consecutive_failures: 2, failing_since: new Date(1_000).toISOString(), last_error: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092' });
    down = false;
    await t.sink.sendPartials({ key: 'k', value: new Uint8Array() });
    expect(t.state().status).toBe('ok');
  });
});
