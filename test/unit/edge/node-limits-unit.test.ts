/**
 * The Node edge's limits against slow and hostile clients (edge/node/http-listener.ts
 * `createNodeEdgeServer`), on real sockets through `startNodeEdge`: header and body timeouts,
 * the connection cap and the cap on body bytes held at once, each answered with a JSON error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { startNodeEdge, type RunningNodeEdge } from '../../../edge/node/server.ts';
import { fakeSink } from './helpers.ts';

const running: RunningNodeEdge[] = [];
const sockets: Socket[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const e of running.splice(0)) await e.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function edgeWith(env: Record<string, string>): Promise<{ port: number; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-limits-'));
  dirs.push(dir);
  const config = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk_a:site-a', PSEUDONYM_SALT: 'limits-test-salt-0123456789', FLUSH_INTERVAL_MS: '20', DEDUP_DIR: dir, ...env });
  if (!config.ok) throw new Error(config.errors.join('\n'));
  const edge = await startNodeEdge({ config: config.config, brokers: [], port: 0, hostname: '127.0.0.1', sink: fakeSink(), log: () => undefined });
  running.push(edge);
  return { port: Number(new URL(edge.url).port), url: edge.url };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection. */
  closed: boolean;
}

/** A raw TCP client: writes what the test says, collects the answer until the server closes or `waitMs` passes. */
function rawClient(port: number): { socket: Socket; write(s: string | Uint8Array): void; answer(waitMs: number): Promise<RawAnswer | undefined> } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.on('close', () => ((closed = true), resolve())));
  return {
    socket,
    write: (s) => void socket.write(s),
    async answer(waitMs) {
      await Promise.race([ended, new Promise((r) => setTimeout(r, waitMs))]);
      const split = data.indexOf('\r\n\r\n');
      if (split < 0) return undefined;
      const [statusLine, ...lines] = data.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      return { status: Number(statusLine?.split(' ')[1]), headers, body: data.slice(split + 4), closed };
    },
  };
}

const head = (path: string, length: number) => `POST ${path} HTTP/1.1\r\nhost: edge\r\nauthorization: Basic ${btoa('wk_a:')}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
const code = (a: RawAnswer | undefined) => (a === undefined ? undefined : (JSON.parse(a.body) as { error: { code: string } }).error.code);

describe('Node edge limits', () => {
  it('answers a body that stops arriving with 408 body_timeout after BODY_TIMEOUT_MS and closes the connection', async () => {
    const { port } = await edgeWith({ BODY_TIMEOUT_MS: '300' });
    const client = rawClient(port);
    client.write(head('/v1/batch', 1000) + '{"batch":[');
    const answer = await client.answer(5000);
    expect(answer).toMatchObject({ status: 408, closed: true, headers: { 'content-type': expect.stringContaining('application/json') } });
    expect(code(answer)).toBe('body_timeout');
  });

  it('does not let a body trickle in a byte at a time past BODY_TIMEOUT_MS', async () => {
    const { port } = await edgeWith({ BODY_TIMEOUT_MS: '400' });
    const client = rawClient(port);
    client.write(head('/v1/batch', 1000));
    const trickle = setInterval(() => client.write(' '), 50);
    try {
      const answer = await client.answer(5000);
      expect(answer?.status).toBe(408);
      expect(code(answer)).toBe('body_timeout');
    } finally {
      clearInterval(trickle);
    }
  });

  it('answers headers that stop arriving with 408 request_timeout as JSON', async () => {
    const { port } = await edgeWith({ HEADERS_TIMEOUT_MS: '300' });
    const client = rawClient(port);
    client.write('POST /v1/batch HTTP/1.1\r\nhost: edge\r\n');
    const answer = await client.answer(5000);
    expect(answer).toMatchObject({ status: 408, closed: true });
    expect(code(answer)).toBe('request_timeout');
  });

  it('answers malformed HTTP with 400 bad_request as JSON', async () => {
    const { port } = await edgeWith({});
    const client = rawClient(port);
    client.write('POST /v1/batch HTTP/1.1\r\nhost: edge\r\ncontent-length: nope\r\n\r\n');
    const answer = await client.answer(5000);
    expect(answer?.status).toBe(400);
    expect(code(answer)).toBe('bad_request');
  });

  it('answers a connection over MAX_CONNECTIONS with 503 overloaded and Retry-After, and serves again once one closes', async () => {
    const { port, url } = await edgeWith({ MAX_CONNECTIONS: '3' });
    const idle = [rawClient(port), rawClient(port), rawClient(port)];
    await Promise.all(idle.map((c) => new Promise((r) => c.socket.once('connect', r))));
    const over = rawClient(port);
    over.write(head('/v1/batch', 2) + '{}');
    const answer = await over.answer(5000);
    expect(answer).toMatchObject({ status: 503, closed: true, headers: { 'retry-after': '1' } });
    expect(code(answer)).toBe('overloaded');

    idle[0]?.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { authorization: `Basic ${btoa('wk_a:')}`, connection: 'close' }, body: JSON.stringify({ batch: [{ type: 'track', event: 'e', userId: 'u' }] }) });
    expect(res.status).toBe(200);
  });

  it('answers 503 overloaded once MAX_INFLIGHT_BODY_BYTES are held by stalled uploads, and frees them when those end', async () => {
    const { port, url } = await edgeWith({ MAX_BODY_BYTES: '40000', MAX_INFLIGHT_BODY_BYTES: '65536', BODY_TIMEOUT_MS: '600000' });
    const stalled = [rawClient(port), rawClient(port)];
    for (const c of stalled) c.write(head('/v1/batch', 30_000) + '{"batch":[');
    await new Promise((r) => setTimeout(r, 100));
    const third = rawClient(port);
    third.write(head('/v1/batch', 30_000) + '{"batch":[');
    const answer = await third.answer(5000);
    expect(answer).toMatchObject({ status: 503, closed: true, headers: { 'retry-after': '1' } });
    expect(code(answer)).toBe('overloaded');

    // The stalled clients go away: their reservations are released.
    for (const c of stalled) c.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { authorization: `Basic ${btoa('wk_a:')}` }, body: JSON.stringify({ batch: [{ type: 'track', event: 'e', userId: 'u', properties: { pad: 'x'.repeat(30_000) } }] }) });
    expect(res.status).toBe(200);
  });
});
