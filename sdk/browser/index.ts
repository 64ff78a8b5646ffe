/**
 * Tributary browser SDK: Segment-style `page`, `track` and `identify`, batched into a durable
 * localStorage queue and sent to the edge's `/v1/collect`; on `pagehide` / hidden the queue
 * goes out with `navigator.sendBeacon`. Built to `sdk/browser/dist/tributary.min.js`
 * (`window.tributary`) by `npm run build:sdk`; see docs/SDK.md.
 *
 * @example
 * ```ts
 * tributary.init({ writeKey: 'wk_demo', endpoint: 'https://collect.example.com' });
 * tributary.page();
 * tributary.track('Signup Clicked', { plan: 'pro', value: 3 });
 * ```
 */
import { uuid } from './ids.ts';
import { doNotTrack } from './privacy.ts';
import { append, head, queued, remove } from './queue.ts';
import { load, save } from './storage.ts';
import { beacon, body, post } from './transport.ts';
import type { PageContext, Properties, SdkEvent, Settings, TributaryOptions } from './types.ts';

export type { Properties, SdkEvent, TributaryOptions } from './types.ts';

export const VERSION = '0.1.0';
const MAX_BACKOFF_MS = 60_000;

let settings: Settings | undefined;
let url = '';
let timer: ReturnType<typeof setTimeout> | undefined;
let attempt = 0;
let inflight: Promise<void> | undefined;
let listening = false;

/** Starts the SDK; call it before anything else. Events queued on earlier visits are sent. */
export function init(options: TributaryOptions): void {
  settings = {
    endpoint: '',
    flushAt: 20,
    flushIntervalMs: 10_000,
    respectDoNotTrack: false,
    consent: true,
    maxQueueEvents: 500,
    maxQueueBytes: 262_144,
    ...options,
  };
  url = settings.endpoint.replace(/\/+$/, '') + '/v1/collect';
  if (!listening) {
    listening = true;
    // pagehide is the last reliable moment on desktop; mobile browsers may kill a hidden
    // page without it, so hiding sends too (the page may come back: the queue just refills).
    addEventListener('pagehide', sendOnExit);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') sendOnExit();
    });
  }
  kick();
}

/** Records a page view (counted as event `$page`). */
export function page(name?: string, properties?: Properties): void {
  record('page', { name, properties: { ...pageContext(), ...properties } });
}

/** Records an action, e.g. `track('Signup Clicked', { value: 3 })`. */
export function track(event: string, properties?: Properties): void {
  record('track', { event, properties });
}

/** Remembers the user id for later events (localStorage `trib_uid`) and records an identify. */
export function identify(userId?: string, traits?: Properties): void {
  if (!enabled()) return;
  if (userId != null) save('uid', userId);
  record('identify', { traits });
}

/** Forgets the user id and anonymous id (e.g. on logout); the next event gets a new anonymous id. */
export function reset(): void {
  save('uid');
  save('aid');
}

/** Stops collecting for this visitor on this site (remembered) and deletes what is stored. */
export function optOut(): void {
  save('optout', 1);
  forget();
}

/** Undoes `optOut()`. */
export function optIn(): void {
  save('optout');
  kick();
}

/** Sets the consent flag; withdrawing consent deletes what is stored, like `optOut()`. */
export function setConsent(granted: boolean): void {
  if (settings) settings.consent = granted;
  if (granted) kick();
  else forget();
}

/** Events dropped so far because the queue was full (localStorage `trib_dropped`). */
export const dropped = (): number => load('dropped', 0);

/** Sends everything queued now; resolves when the queue is empty or a retry is scheduled. */
export function flush(): Promise<void> {
  return (inflight ??= drain().finally(() => (inflight = undefined)));
}

function enabled(): boolean {
  return !!settings && settings.consent && !load('optout', 0) && !(settings.respectDoNotTrack && doNotTrack());
}

function pageContext(): PageContext {
  return { path: location.pathname, url: location.href, referrer: document.referrer, search: location.search, title: document.title };
}

function record(type: SdkEvent['type'], fields: Partial<SdkEvent>): void {
  if (!settings || !enabled()) return;
  let anonymousId = load('aid', '');
  if (!anonymousId) save('aid', (anonymousId = uuid()));
  append(
    {
      type,
      messageId: uuid(),
      timestamp: new Date().toISOString(),
      anonymousId,
      userId: load<string | undefined>('uid', undefined),
      context: { page: pageContext(), userAgent: navigator.userAgent, library: { name: 'tributary.js', version: VERSION } },
      ...fields,
    },
    settings.maxQueueEvents,
    settings.maxQueueBytes,
  );
  kick();
}

/** Flushes at `flushAt` events (unless backing off), else within `flushIntervalMs`. */
function kick(): void {
  const n = queued().length;
  if (!settings || !n) return;
  if (n >= settings.flushAt && !attempt) void flush();
  else if (!timer) later(settings.flushIntervalMs);
}

function later(ms: number): void {
  clearTimeout(timer);
  timer = setTimeout(flush, ms);
}

async function drain(): Promise<void> {
  clearTimeout(timer);
  timer = undefined;
  for (let q = queued(); settings && enabled() && q.length; q = queued()) {
    const chunk = head(q);
    let done = false;
    try {
      done = await post(url, body(settings.writeKey, chunk));
    } catch {
      // Offline or the edge unreachable: keep the events.
    }
    if (!done) {
      // Exponential back-off with jitter, so many pages do not come back at the same moment.
      later(Math.min(1000 * 2 ** attempt++, MAX_BACKOFF_MS) * (0.5 + Math.random() / 2));
      return;
    }
    attempt = 0;
    remove(chunk);
  }
}

function sendOnExit(): void {
  const q = queued();
  if (!settings || !enabled() || !q.length) return;
  // One chunk: the browser allows 64 KiB of beacons per page. The rest stays queued for the next visit.
  const chunk = head(q);
  beacon(url, body(settings.writeKey, chunk), () => remove(chunk));
}

function forget(): void {
  clearTimeout(timer);
  timer = undefined;
  save('q');
  save('aid');
  save('uid');
}
