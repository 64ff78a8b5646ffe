/**
 * Cost of the edge's scrubber per call (docs/EDGE.md "What is scrubbed"):
 *
 *   npx tsx bench/edge/scrub-cost.ts
 *
 * The pipeline scrubs every track event's name, and every new path, kept query value and
 * referrer domain (those are cached by the enrichment step): the first two rows are the hot
 * path, the others what a string costs the first time it is seen.
 */
import { createScrubber, scrubText } from '../../shared/privacy/scrub.ts';

const uncached = createScrubber({ cacheSize: 0 });

function per(label: string, f: () => string, n: number): void {
  for (let i = 0; i < 2000; i++) f();
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  console.log(`${label}: ${Math.round(((performance.now() - t) * 1e6) / n)} ns/call`);
}

per('skipped by the pre-check ("Product Viewed")', () => scrubText('Product Viewed'), 1_000_000);
per('cache hit ("checkout-step-2024")', () => scrubText('checkout-step-2024'), 1_000_000);
per('uncached, nothing found ("/products/abc-item-12")', () => uncached('/products/abc-item-12'), 100_000);
per('uncached, e-mail ("Invite alice@example.com")', () => uncached('Invite alice@example.com'), 100_000);
per('uncached, card ("/card/4111111111111111")', () => uncached('/card/4111111111111111'), 100_000);
per('uncached, bare phone number, one libphonenumber parse ("Call 4155550199")', () => uncached('Call 4155550199'), 20_000);
