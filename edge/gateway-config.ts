import { isValidEdgeId } from '../schemas/gateway-signature.ts';
import { SETTINGS, readEnum, readText, readTrimmed } from '../shared/config/index.ts';
import type { GatewayClientConfig } from './gateway-client.ts';
import { urlForMessage } from '../shared/secret-text.ts';

export type GatewayConfigResult = { ok: true; config: GatewayClientConfig } | { ok: false; errors: string[] };

/**
 * Parses the gateway client settings of the Workers and Deno edges from a flat string map
 * (wrangler vars + secrets, or `Deno.env.toObject()`): `GATEWAY_URL`, `EDGE_ID` and the secret
 * `GATEWAY_SIGNING_KEY`. Every bad value gets its own message; the secret never appears in one.
 *
 * @example
 * ```ts
 * const r = parseGatewayClientConfig(env, { defaultEdgeId: 'workers' });
 * if (!r.ok) throw new Error(r.errors.join('\n'));
 * ```
 */
export function parseGatewayClientConfig(env: Record<string, string | undefined>, o: { defaultEdgeId: string }): GatewayConfigResult {
  const errors: string[] = [];
  const rawUrl = readTrimmed(env, 'GATEWAY_URL') ?? '';
  // TRIBUTARY_ENV is reported by the edge settings' parser; here it only relaxes plain http.
  const dev = readEnum(env, SETTINGS.TRIBUTARY_ENV, []) === 'dev';
  let url = '';
  if (rawUrl === '') {
    errors.push('GATEWAY_URL is required: the base URL of `tributary gateway`, e.g. https://gateway.example.com');
  } else {
    let parsed: URL | undefined;
    try {
      parsed = new URL(rawUrl);
    } catch {
      parsed = undefined;
    }
    const loopback = parsed !== undefined && /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(parsed.hostname);
    if (parsed === undefined || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
      errors.push(`GATEWAY_URL=${urlForMessage(rawUrl)} is not an http(s) URL (example: https://gateway.example.com)`);
    } else if (parsed.protocol === 'http:' && !loopback && !dev) {
      errors.push(`GATEWAY_URL=${urlForMessage(rawUrl)} uses plain http: use https outside dev (partials are signed, not encrypted)`);
    } else {
      url = rawUrl.replace(/\/+$/, '');
    }
  }
  const edgeId = readTrimmed(env, 'EDGE_ID') ?? o.defaultEdgeId;
  if (!isValidEdgeId(edgeId)) errors.push(`EDGE_ID=${JSON.stringify(edgeId)} is not valid: use letters, digits, "_", "." or "-" (at most 64), the id listed in the gateway's GATEWAY_SIGNING_KEYS`);
  const secret = readText(env, SETTINGS.GATEWAY_SIGNING_KEY, errors) ?? '';
  if (secret === '') {
    errors.push('GATEWAY_SIGNING_KEY is required: a random secret of at least 32 characters (e.g. `openssl rand -hex 32`), also listed as EDGE_ID:secret in the gateway\'s GATEWAY_SIGNING_KEYS; on Workers set it with `wrangler secret put GATEWAY_SIGNING_KEY`');
  } else if (secret.length < 32) {
    errors.push(`GATEWAY_SIGNING_KEY is too short (${secret.length} characters): use at least 32 random characters, e.g. \`openssl rand -hex 32\``);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config: { url, edgeId, secret } };
}
