/** True when the browser asks not to be tracked: Do-Not-Track `1` or Global Privacy Control. */
export function doNotTrack(): boolean {
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
  return nav.doNotTrack === '1' || nav.globalPrivacyControl === true;
}
