/**
 * Waits for a condition instead of a fixed time: asks `predicate` every `intervalMs` until it holds,
 * and fails with `description` once `timeoutMs` has passed. Returns the first truthy answer.
 */
export async function waitUntil<T>(
  description: string,
  predicate: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
