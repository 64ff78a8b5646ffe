/**
 * The text of something thrown: an Error's message, anything else as a string. For logs and
 * reasons; callers that quote it to a user redact secrets first (core/config/secrets.ts).
 *
 * @example
 * errorMessage(new Error('broker down')); // 'broker down'
 * errorMessage('timeout');                // 'timeout'
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
