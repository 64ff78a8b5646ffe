/**
 * Entry of the script build: puts the API on `window.tributary`. An object literal rather than
 * esbuild's `globalName` export wrapper keeps the bundle a few hundred bytes smaller.
 */
import { dropped, flush, identify, init, optIn, optOut, page, reset, setConsent, track, VERSION } from './index.ts';

const tributary = { init, page, track, identify, flush, reset, optOut, optIn, setConsent, dropped, VERSION };

declare global {
  interface Window {
    /** The browser SDK, once `tributary.min.js` has loaded. */
    tributary: typeof tributary;
  }
}

window.tributary = tributary;
