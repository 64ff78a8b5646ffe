export { isLoopbackHost } from '../shared/config/hosts.ts';

/** The host to put in a URL for a server listening on `host`: a wildcard address is reached on loopback. */
export function urlHostOf(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return '127.0.0.1';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
