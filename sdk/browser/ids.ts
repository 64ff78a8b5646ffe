/**
 * A random RFC 4122 version-4 UUID. `crypto.randomUUID` exists only in secure contexts
 * (https, localhost); plain-http pages fall back to `getRandomValues`, which works everywhere.
 */
export function uuid(): string {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (d) => {
    const n = +d;
    const random = c?.getRandomValues ? c.getRandomValues(new Uint8Array(1))[0]! : (Math.random() * 256) | 0;
    return (n ^ (random & (15 >> (n / 4)))).toString(16);
  });
}
