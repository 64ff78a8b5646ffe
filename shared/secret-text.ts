/**
 * How a URL from configuration may appear in an error message: credentials in it
 * (`https://user:secret@host`) are masked, and a value that does not parse as a URL is not
 * quoted at all, since it may be a secret pasted into the wrong variable.
 *
 * @example
 * ```ts
 * urlForMessage('https://u:pw@ch.example.com:8443/') // '"https://***:***@ch.example.com:8443/"'
 * ```
 */
export function urlForMessage(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '(a value that is not a URL; not shown)';
  }
  if (url.username !== '') url.username = '***';
  if (url.password !== '') url.password = '***';
  return JSON.stringify(url.toString());
}
