import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bundleSdk, SDK_GZIP_BUDGET } from '../../../scripts/build-sdk.ts';

// The size budget is part of the SDK's spec (issue #3): a page pays for every byte it embeds.
describe('browser SDK bundle', () => {
  it(`is under ${SDK_GZIP_BUDGET} bytes minified and gzipped`, async () => {
    const bundle = await bundleSdk();
    expect(gunzipSync(gzipSync(bundle.code)).toString()).toBe(bundle.code);
    expect(bundle.gzipBytes).toBe(gzipSync(Buffer.from(bundle.code)).byteLength);
    expect(bundle.gzipBytes).toBeLessThan(SDK_GZIP_BUDGET);
  });

  it('is a self-contained script that defines window.tributary and nothing else', async () => {
    const { code } = await bundleSdk();
    expect(code).not.toMatch(/\brequire\(|\bimport\b|\bexport\b|node:/);
    const window: Record<string, unknown> = {};
    new Function('window', 'localStorage', code)(window, undefined);
    expect(Object.keys(window)).toEqual(['tributary']);
    const api = window.tributary as Record<string, unknown>;
    expect(Object.keys(api).sort()).toEqual(['VERSION', 'dropped', 'flush', 'identify', 'init', 'optIn', 'optOut', 'page', 'reset', 'setConsent', 'track']);
  });
});
