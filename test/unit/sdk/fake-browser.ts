/**
 * A fake browser for the SDK unit tests: the globals the SDK touches (localStorage, navigator,
 * location, document, addEventListener, fetch), stubbed with `vi.stubGlobal`, plus a fresh
 * copy of the SDK module per "page load" (the SDK keeps per-page state in module scope).
 */
import { vi, type Mock } from 'vitest';
import type * as SdkModule from '../../../sdk/browser/index.ts';

export class FakeStorage implements Storage {
  readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  clear(): void {
    this.items.clear();
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  /** The parsed value of an SDK key (`q`, `aid`, ...), `undefined` when absent. */
  sdk(key: string): unknown {
    const raw = this.items.get(`trib_${key}`);
    return raw === undefined ? undefined : JSON.parse(raw);
  }
}

export interface SentRequest {
  url: string;
  init: RequestInit;
  body: { writeKey: string; sentAt: string; batch: Array<Record<string, unknown>> };
}

export interface FakeBrowser {
  storage: FakeStorage;
  fetch: Mock<(url: string, init: RequestInit) => Promise<Response>>;
  sendBeacon: Mock<(url: string, data: string) => boolean>;
  navigator: { userAgent: string; doNotTrack: string | null; globalPrivacyControl?: boolean; sendBeacon: FakeBrowser['sendBeacon'] };
  document: { referrer: string; title: string; visibilityState: string };
  /** Requests made with fetch, bodies parsed. */
  fetched(): SentRequest[];
  /** Beacons the browser accepted or refused, bodies parsed. */
  beacons(): SentRequest[];
  /** Fires `pagehide` on the window. */
  pagehide(): void;
  /** Sets `document.visibilityState` and fires `visibilitychange`. */
  setVisibility(state: 'hidden' | 'visible'): void;
  /** Answers every fetch with this status from now on. */
  respondWith(status: number | 'network-error'): void;
}

export const PAGE = {
  href: 'https://shop.example/pricing?plan=pro',
  pathname: '/pricing',
  search: '?plan=pro',
  referrer: 'https://search.example/',
  title: 'Pricing',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) FakeBrowser/1.0',
};

export function installFakeBrowser(storage = new FakeStorage()): FakeBrowser {
  const windowListeners = new Map<string, Array<() => void>>();
  const documentListeners = new Map<string, Array<() => void>>();
  const on = (map: Map<string, Array<() => void>>) => (type: string, listener: () => void) => void map.set(type, [...(map.get(type) ?? []), listener]);
  let status: number | 'network-error' = 202;

  const fetch = vi.fn(async (_url: string, _init: RequestInit): Promise<Response> => {
    if (status === 'network-error') throw new TypeError('Failed to fetch');
    return new Response(status === 204 ? null : '{}', { status });
  });
  const sendBeacon = vi.fn((_url: string, _data: string) => true);
  const navigator = { userAgent: PAGE.userAgent, doNotTrack: null as string | null, sendBeacon };
  const document = { referrer: PAGE.referrer, title: PAGE.title, visibilityState: 'visible', addEventListener: on(documentListeners) };
  const fire = (map: Map<string, Array<() => void>>, type: string) => (map.get(type) ?? []).forEach((l) => l());

  vi.stubGlobal('localStorage', storage);
  vi.stubGlobal('navigator', navigator);
  vi.stubGlobal('location', { href: PAGE.href, pathname: PAGE.pathname, search: PAGE.search });
  vi.stubGlobal('document', document);
  vi.stubGlobal('addEventListener', on(windowListeners));
  vi.stubGlobal('fetch', fetch);

  const parse = (url: string, init: RequestInit | string): SentRequest => {
    const raw = typeof init === 'string' ? init : init.body;
    if (typeof raw !== 'string') throw new Error('the SDK must send a string body (text/plain, no preflight)');
    return { url, init: typeof init === 'string' ? {} : init, body: JSON.parse(raw) as SentRequest['body'] };
  };
  return {
    storage,
    fetch,
    sendBeacon,
    navigator,
    document,
    fetched: () => fetch.mock.calls.map(([url, init]) => parse(url, init)),
    beacons: () => sendBeacon.mock.calls.map(([url, data]) => parse(url, data)),
    pagehide: () => fire(windowListeners, 'pagehide'),
    setVisibility: (state) => {
      document.visibilityState = state;
      fire(documentListeners, 'visibilitychange');
    },
    respondWith: (s) => void (status = s),
  };
}

export type Sdk = typeof SdkModule;

/** A fresh SDK module, as after a page load. */
export async function loadSdk(): Promise<Sdk> {
  vi.resetModules();
  return import('../../../sdk/browser/index.ts');
}

/** Lets pending promise callbacks (fetch answers, queue updates) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
