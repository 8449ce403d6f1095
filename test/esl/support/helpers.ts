import { EslClient, type EslClientOptions } from '../../../src/esl/client';
import { createLogger } from '../../../src/logger';

export const silent = createLogger('silent');

export function makeClient(port: number, over: Partial<EslClientOptions> = {}): EslClient {
  return new EslClient({
    host: '127.0.0.1',
    port,
    password: 'ClueCon',
    events: ['CHANNEL_ANSWER', 'CHANNEL_HANGUP_COMPLETE'],
    commandTimeoutMs: 1000,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    logger: silent,
    ...over,
  });
}

export function once<T = unknown>(emitter: { once(ev: string, fn: (v: T) => void): unknown }, ev: string): Promise<T> {
  return new Promise((resolve) => emitter.once(ev, (v: T) => resolve(v)));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true (or fails the test after `ms`). */
export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Deterministic shuffle (the test must not depend on luck). */
export function shuffle<T>(xs: T[], seed = 7): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}
