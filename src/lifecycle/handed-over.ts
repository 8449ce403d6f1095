import type { RedisClient } from '../stores/redis';
import { LiveCallStore, type AttemptStartReply, type LiveCallPatch, type Publication } from '../stores/live-calls';

/**
 * Click-to-dial calls this controller gave back to the queue at its drain deadline. The job's
 * processor still runs here until the process exits, but another controller owns the call now:
 * nothing this one still learns or decides about the call may be written.
 */
export class HandedOverCalls {
  private readonly ids = new Set<string>();

  add(callId: string): void {
    this.ids.add(callId);
  }

  has(callId: string): boolean {
    return this.ids.has(callId);
  }
}

export class HandedOverError extends Error {
  constructor(callId: string) {
    super(`call ${callId} was handed over to another controller`);
    this.name = 'HandedOverError';
  }
}

/**
 * The live-call store as the call flows of this controller see it: once a call is handed over, its
 * claims and updates fail here (so no leg is dialled and no end is recorded by the old owner, whose
 * view of the call stops at the handover).
 */
export class GuardedLiveCallStore extends LiveCallStore {
  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly handedOver: HandedOverCalls,
  ) {
    super(redis, prefix);
  }

  override startAttempt(callId: string, attempt: number, patch: LiveCallPatch, publish?: readonly Publication[]): Promise<AttemptStartReply> {
    if (this.handedOver.has(callId)) return Promise.reject(new HandedOverError(callId));
    return super.startAttempt(callId, attempt, patch, publish);
  }

  override update(callId: string, patch: LiveCallPatch, publish?: readonly Publication[]): Promise<boolean> {
    if (this.handedOver.has(callId)) return Promise.reject(new HandedOverError(callId));
    return super.update(callId, patch, publish);
  }
}
