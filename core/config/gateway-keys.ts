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

/** The sites an edge may write: a set of site ids, or `*` for every site. */
export type EdgeSites = ReadonlySet<string> | '*';

// The edge's site id form (TRIBUTARY_WRITE_KEYS), as in read-keys.ts.
const SITE = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Parses `GATEWAY_EDGE_SITES` = `edgeId:site+site,edgeId:*`: which sites each edge of
 * `GATEWAY_SIGNING_KEYS` may write (envelope rows and rejected records). Unset: every edge may
 * write every site (the gateway logs `gateway_edge_sites_unbound` at start). Set: every edge with
 * a key must be listed, and only those. Edge and site ids are not secret, so messages name them.
 *
 * @example
 * parseGatewayEdgeSites('workers-prod:shop+blog,deno-eu:*', keys, errors);
 * // Map { 'workers-prod' => Set { 'shop', 'blog' }, 'deno-eu' => '*' }
 */
export function parseGatewayEdgeSites(raw: string | undefined, keys: ReadonlyMap<string, string>, errors: ConfigErrors): Map<string, EdgeSites> | undefined {
  if (raw === undefined) return undefined;
  const form = 'a comma list of edgeId:site+site (an edge id of GATEWAY_SIGNING_KEYS; site ids joined by "+", or * for every site)';
  const sites = new Map<string, EdgeSites>();
  raw.split(',').map((s) => s.trim()).filter((s) => s !== '').forEach((entry, i) => {
    const at = `GATEWAY_EDGE_SITES entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) return errors.add(`${at} has no ':' between edge id and sites: expected ${form}`);
    const edgeId = entry.slice(0, colon).trim();
    const text = entry.slice(colon + 1).trim();
    if (!isValidEdgeId(edgeId)) return errors.add(`${at} has an invalid edge id: expected ${form}`);
    if (!keys.has(edgeId)) return errors.add(`${at} names edge ${JSON.stringify(edgeId)}, which has no key in GATEWAY_SIGNING_KEYS`);
    if (sites.has(edgeId)) return errors.add(`${at} repeats edge ${JSON.stringify(edgeId)}: list all of an edge's sites in one entry (site1+site2)`);
    if (text === '*') return sites.set(edgeId, '*');
    const list = text.split('+').map((s) => s.trim());
    const bad = list.find((s) => !SITE.test(s));
    if (bad !== undefined) return errors.add(`${at} names an invalid site ${JSON.stringify(bad.slice(0, 140))}: expected ${form}`);
    sites.set(edgeId, new Set(list));
  });
  const missing = [...keys.keys()].filter((e) => !sites.has(e));
  if (missing.length > 0) errors.add(`GATEWAY_EDGE_SITES does not list edge ${missing.map((e) => JSON.stringify(e)).join(', ')}: give every edge of GATEWAY_SIGNING_KEYS its sites (edgeId:site+site, or edgeId:* for every site)`);
  return sites;
}
