import { EslDisconnectedError, EslError, EslTimeoutError } from './errors';

/**
 * One command waiting for its answer. It settles exactly once: by its own reply/event, by its
 * timeout, or by the connection dropping. Whatever arrives after that is ignored, so a late reply
 * can never be handed to another caller.
 */
export class PendingOp<T> {
  settled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly cleanups: Array<() => void> = [];

  constructor(
    private readonly ok: (v: T) => void,
    private readonly fail: (err: Error) => void,
    timeoutMs: number,
    what: string,
    registry: Set<PendingOp<unknown>>,
  ) {
    registry.add(this as PendingOp<unknown>);
    this.cleanups.push(() => registry.delete(this as PendingOp<unknown>));
    this.timer = setTimeout(() => this.reject(new EslTimeoutError(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  }

  onSettled(fn: () => void): void {
    this.cleanups.push(fn);
  }

  resolve(v: T): void {
    if (this.finish()) this.ok(v);
  }

  reject(err: Error): void {
    if (this.finish()) this.fail(err);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    for (const fn of this.cleanups) fn();
    return true;
  }
}

export function track<T>(registry: Set<PendingOp<unknown>>, timeoutMs: number, what: string): { op: PendingOp<T>; promise: Promise<T> } {
  let op!: PendingOp<T>;
  const promise = new Promise<T>((resolve, reject) => {
    op = new PendingOp<T>(resolve, reject, timeoutMs, what, registry);
  });
  return { op, promise };
}

/** Every op still pending fails with the same error (one stack captured per dropped connection, not one per op). */
export function rejectAll(registry: Set<PendingOp<unknown>>, reason: string): void {
  if (registry.size === 0) return;
  const err = new EslDisconnectedError(reason);
  for (const op of [...registry]) op.reject(err);
}

/** Commands and headers are line-framed: a newline would smuggle a second command onto the socket. */
export function assertNoNewline(...parts: Array<string | undefined>): void {
  for (const p of parts) if (p !== undefined && /[\r\n]/.test(p)) throw new EslError('ESL command text must not contain a newline');
}
