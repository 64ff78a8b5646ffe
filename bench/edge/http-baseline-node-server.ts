/**
 * The floor the HTTP benchmark is read against: a trivial node:http server (no framework) that
 * reads the body, JSON.parses it and answers 202, i.e. what any Node server pays per request on
 * this machine before doing any work. Same protocol as http-server.ts: prints `{"port":N}`, and
 * on SIGTERM one JSON line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let events = 0;
const ANSWER = JSON.stringify({ ok: true });
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    events++;
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
    res.end(ANSWER);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.once('SIGTERM', () => {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ envelopes: 0, envelopeBytes: 0, rows: 0, events, rejected: 0, dropped: {}, refused: {}, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  process.exit(0);
});
