/**
 * Requests to the edge's `/v1/collect`. The body is JSON sent as `text/plain` (what a string
 * body gets by default) with the write key inside, so the request is a CORS "simple" request:
 * no preflight, no cookies.
 */
import type { SdkEvent } from './types.ts';

export const body = (writeKey: string, batch: SdkEvent[]): string => JSON.stringify({ writeKey, batch, sentAt: new Date().toISOString() });

/** What to do with a sent chunk: `true` remove it, `false` keep it and retry later. */
export async function post(url: string, payload: string, keepalive?: boolean): Promise<boolean> {
  const res = await fetch(url, { method: 'POST', body: payload, keepalive });
  // Retry on 5xx and 429; other 4xx mean the request itself is unacceptable (unknown write
  // key, malformed batch) and would fail the same way forever.
  return res.status < 500 && res.status !== 429;
}

/**
 * For a page being hidden or unloaded: `navigator.sendBeacon`, else a keepalive fetch.
 * `onSent` runs once the browser took the beacon, or once the keepalive fetch was answered;
 * if the page is gone before that, the events stay queued and go again on the next visit.
 */
export function beacon(url: string, payload: string, onSent: () => void): void {
  if (navigator.sendBeacon?.(url, payload)) onSent();
  else post(url, payload, true).then((ok) => ok && onSent(), () => undefined);
}
