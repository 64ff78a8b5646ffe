import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Limits of the gateway's HTTP listener (ADR 0015); defaults in {@link DEFAULT_CONNECTION_LIMITS}. */
export interface ConnectionLimits {
  /** Open connections at once; the next one is answered 503 + Retry-After and closed. */
  maxConnections: number;
  /** Time to receive a request's headers. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (a slow or stalled upload is cut at this). */
  requestTimeoutMs: number;
  /** A connection with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** How long an idle keep-alive connection is kept for its next request. */
  keepAliveTimeoutMs: number;
  /** Retry-After (s) of the over-capacity answer. */
  retryAfterS: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  retryAfterS: 5,
};

/** node:http server options that enforce the timeouts (checked every second rather than Node's default 30 s). */
export function serverTimeouts(l: ConnectionLimits): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  return { headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, keepAliveTimeout: l.keepAliveTimeoutMs, connectionsCheckingInterval: 1_000 };
}

/**
 * Caps open connections on `server`. Node's own `maxConnections` drops the socket without a
 * word; a client then cannot tell overload from a network fault, so a connection over the cap
 * gets a complete `503` with `Retry-After` and the gateway's JSON error body, then is closed
 * (its request, if any, is not read). Also applies the idle timeout to every socket.
 */
export function limitConnections(server: Server, l: ConnectionLimits, onRefused: () => void): { readonly open: number } {
  let open = 0;
  const body = JSON.stringify({ error: { code: 'overloaded', message: 'the gateway has as many connections open as it may: retry after Retry-After' } });
  const answer =
    `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: ${l.retryAfterS}\r\nconnection: close\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  // node:http parses a socket in its own 'connection' listener: run it only for sockets under the
  // cap, so an over-cap one never reaches the parser (nor the app).
  const parse = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (open >= l.maxConnections) {
      onRefused();
      socket.on('error', () => {});
      socket.end(answer);
      // Unread request bytes could keep it half-open: give the answer a moment, then let go.
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    open++;
    socket.once('close', () => open--);
    socket.setTimeout(l.idleTimeoutMs, () => socket.destroy());
    for (const f of parse) f.call(server, socket);
  });
  return {
    get open() {
      return open;
    },
  };
}

/** How long a request answered before its body was read may go on sending (discarded) before its connection is closed. */
export const LINGER_MS = 1_000;

/**
 * A request answered before its body was read (refused unsigned, over a cap): once the answer is
 * written, discard what still arrives and close the connection after {@link LINGER_MS} — a
 * "lingering close". Closing at once would reset the connection while the client is still
 * sending, and its kernel would drop our answer unread; reading on costs no memory.
 * Requires the adapter's own clean-up (`autoCleanupIncoming`) off: it destroys the socket at once.
 */
export function lingerUnreadBodies(server: Server): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    res.once('finish', () => {
      if (req.complete) return;
      req.resume();
      const timer = setTimeout(() => req.socket.destroy(), LINGER_MS);
      timer.unref();
      req.once('end', () => clearTimeout(timer));
    });
  });
}
