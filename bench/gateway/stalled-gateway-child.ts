/**
 * A gateway HTTP server with a producer that acknowledges everything (no Kafka), for
 * bench/gateway/stalled-uploads.ts: prints `{"port":N}` on stdout once listening.
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createGatewayApp } from '../../core/gateway/app.ts';
import { silentLogger } from '../../core/log.ts';

const keys = new Map([['bench-edge', 'bench-gateway-secret-0123456789abcdef']]);
const app = createGatewayApp({ keys, logger: silentLogger(), producer: { sendPartials: async () => {}, sendRejected: async () => {} } });
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
server.once('listening', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
