/**
 * localStorage under the `trib_` prefix, JSON-encoded. When storage is unavailable (disabled,
 * sandboxed, or full) the SDK keeps working from memory for the life of the page.
 */
const memory: Record<string, string | null> = {};
let local: Storage | undefined;
try {
  local = localStorage;
} catch {
  // Accessing localStorage throws when the browser blocks storage for this page.
}

export function load<T>(key: string, fallback: T): T {
  let raw: string | null | undefined = memory[key];
  try {
    // Read storage every time: another tab of the same site may have changed the queue.
    if (local) raw = memory[key] = local.getItem('trib_' + key);
  } catch {
    local = undefined;
  }
  try {
    return raw == null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

/** Stores `value` (`raw`: its JSON, when the caller has it already); `undefined` removes the key. */
export function save(key: string, value?: unknown, raw: string | null = value === undefined ? null : JSON.stringify(value)): void {
  memory[key] = raw;
  try {
    if (raw == null) local?.removeItem('trib_' + key);
    else local?.setItem('trib_' + key, raw);
  } catch {
    // Quota exceeded or storage revoked: memory only from here on.
    local = undefined;
  }
}
