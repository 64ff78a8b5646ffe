/**
 * Bundles and minifies the browser SDK (entry `sdk/browser/global.ts`) into
 * `sdk/browser/dist/tributary.min.js`, an IIFE that defines `window.tributary`.
 * Run by `npm run build:sdk` (and before `npm test`); prints the minified and gzipped sizes.
 * The size budget (under 2048 bytes gzipped) is asserted by test/unit/sdk/sdk-size-unit.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SDK_ENTRY = join(root, 'sdk', 'browser', 'global.ts');
export const SDK_OUTFILE = join(root, 'sdk', 'browser', 'dist', 'tributary.min.js');
/** The budget of the minified bundle after gzip, in bytes (issue #3). */
export const SDK_GZIP_BUDGET = 2048;

export interface SdkBundle {
  code: string;
  minBytes: number;
  /** Size after gzip at zlib's default level (6), what `gzip` and most web servers produce. */
  gzipBytes: number;
}

/** Builds the bundle in memory. */
export async function bundleSdk(): Promise<SdkBundle> {
  const result = await build({
    entryPoints: [SDK_ENTRY],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    // Browsers with sendBeacon, keepalive fetch and ES2020 syntax (2020 onwards).
    target: ['es2020'],
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output for the browser SDK');
  const code = file.text;
  return { code, minBytes: file.contents.byteLength, gzipBytes: gzipSync(file.contents).byteLength };
}

async function main(): Promise<void> {
  const bundle = await bundleSdk();
  mkdirSync(dirname(SDK_OUTFILE), { recursive: true });
  writeFileSync(SDK_OUTFILE, bundle.code);
  const verdict = bundle.gzipBytes < SDK_GZIP_BUDGET ? 'within' : 'OVER';
  console.log(`${SDK_OUTFILE}: ${bundle.minBytes} bytes minified, ${bundle.gzipBytes} bytes gzipped (${verdict} the ${SDK_GZIP_BUDGET}-byte budget)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
