import { createServer } from 'node:net';
import { isPortFree } from '../../core/os-probes.ts';

/** A TCP port free on 127.0.0.1 right now (the OS picks it), for a process the test starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Two consecutive free ports `port` and `port + 1` (a local Kafka broker and its controller),
 * searched from a random even port in 31000–38998 so that test files do not pick the same one.
 */
export async function freePortPair(): Promise<number> {
  for (let port = 31000 + Math.floor(Math.random() * 4000) * 2; ; port += 2) {
    if (port >= 65534) port = 31000;
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return port;
  }
}
