import { isValidEdgeId } from '../../schemas/gateway-signature.ts';
import type { ConfigErrors } from './env.ts';

/**
 * Parses `GATEWAY_SIGNING_KEYS` = `edgeId:secret,edgeId:secret` (the secret is everything after
 * the first `:`). Messages name the edge, never the secret. Unset gives no keys: the gateway
 * command refuses to start without any, other commands do not need them.
 */
export function parseGatewaySigningKeys(raw: string | undefined, errors: ConfigErrors): Map<string, string> {
  const keys = new Map<string, string>();
  if (raw === undefined) return keys;
  const errorsBefore = errors.messages.length;
  const form = 'a comma list of edgeId:secret (edge id: letters, digits, "_", ".", "-"; secret: at least 32 characters, e.g. `openssl rand -hex 32`)';
  for (const entry of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const colon = entry.indexOf(':');
    const edgeId = colon < 0 ? entry : entry.slice(0, colon);
    const secret = colon < 0 ? '' : entry.slice(colon + 1);
    if (!isValidEdgeId(edgeId)) errors.add(`GATEWAY_SIGNING_KEYS has an entry with an invalid edge id: expected ${form}`);
    else if (secret.length < 32) errors.add(`GATEWAY_SIGNING_KEYS entry for edge ${JSON.stringify(edgeId)} has a secret shorter than 32 characters: expected ${form}`);
    else if (keys.has(edgeId)) errors.add(`GATEWAY_SIGNING_KEYS lists edge ${JSON.stringify(edgeId)} twice: each edge has one key`);
    else keys.set(edgeId, secret);
  }
  if (keys.size === 0 && errors.messages.length === errorsBefore) errors.add(`GATEWAY_SIGNING_KEYS has no entries: expected ${form}`);
  return keys;
}
