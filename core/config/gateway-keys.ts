import { isValidEdgeId } from '../../schemas/gateway-signature.ts';
import type { ConfigErrors } from './env.ts';

/**
 * Parses `GATEWAY_SIGNING_KEYS` = `edgeId:secret,edgeId:secret` (the secret is everything after
 * the first `:`). Messages name entries by position and never quote any part of one. Unset gives no keys: the gateway
 * command refuses to start without any, other commands do not need them.
 */
export function parseGatewaySigningKeys(raw: string | undefined, errors: ConfigErrors): Map<string, string> {
  const keys = new Map<string, string>();
  if (raw === undefined) return keys;
  const errorsBefore = errors.messages.length;
  const form = 'a comma list of edgeId:secret (edge id: letters, digits, "_", ".", "-"; secret: at least 32 characters without "," e.g. `openssl rand -hex 32`)';
  // Entries are named by position only: a secret without its colon, or one that contains a
  // comma, would otherwise be printed as an "edge id".
  const entryOf = new Map<string, number>();
  raw.split(',').map((s) => s.trim()).filter((s) => s !== '').forEach((entry, i) => {
    const at = `GATEWAY_SIGNING_KEYS entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) return errors.add(`${at} has no ':' between edge id and secret: expected ${form}`);
    const edgeId = entry.slice(0, colon);
    const secret = entry.slice(colon + 1);
    const first = entryOf.get(edgeId);
    if (!isValidEdgeId(edgeId)) errors.add(`${at} has an invalid edge id: expected ${form}`);
    else if (secret.length < 32) errors.add(`${at} has a secret shorter than 32 characters: expected ${form}`);
    else if (first !== undefined) errors.add(`${at} names the same edge as entry ${first}: each edge has one key`);
    else {
      entryOf.set(edgeId, i + 1);
      keys.set(edgeId, secret);
    }
  });
  if (keys.size === 0 && errors.messages.length === errorsBefore) errors.add(`GATEWAY_SIGNING_KEYS has no entries: expected ${form}`);
  return keys;
}
