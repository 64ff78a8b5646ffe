import type { EdgeSites } from '../config/gateway-keys.ts';
import { sourceBelongsTo } from '../../schemas/gateway-sources.ts';

/** An edge as the gateway knows it once its signature headers checked out (ADR 0015). */
export interface EdgePrincipal {
  readonly id: string;
  /** `GATEWAY_EDGE_SITES`: the sites it may write; `*` every site. */
  readonly sites: EdgeSites;
}

/** True when `edge` may send envelopes under `sourceId` (schemas/gateway-sources.ts). */
export function ownsSource(edge: EdgePrincipal, sourceId: string): boolean {
  return sourceBelongsTo(edge.id, sourceId);
}

/** True when `edge` may write rows or rejected records of `site`. */
export function mayWriteSite(edge: EdgePrincipal, site: string): boolean {
  return edge.sites === '*' || edge.sites.has(site);
}
