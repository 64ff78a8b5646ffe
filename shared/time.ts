/** Resolves after `ms` milliseconds (a timer, on Node, Workers and Deno alike). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
