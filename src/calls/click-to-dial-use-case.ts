import type { CallResult, CdrRecord, ClickToDialRequest } from '../domain/call';
import { CANCEL_CAUSE, isRetryable } from '../domain/call-result';
import { AppError } from '../domain/errors';
import { legUuid, runClickToDial, type ClickToDialDeps } from '../flows/click-to-dial';
import type { Logger } from '../logger';
import type { CallOutcome } from '../stores/call-outcome';
import type { CallRecord, CallStore } from '../stores/call-store';
import type { LiveCall, LiveCallStore } from '../stores/live-calls';
import type { RouteIndex } from '../stores/route-index';
import type { SwitchControl } from '../flows/switch';
import type { TenantStore } from '../stores/tenant-store';
import { hasValidSignature, InvalidJobError, validateClickToDialJob, type ClickToDialJobData } from './click-to-dial-job';
import {
  callIdFor,
  requestOfCall,
  requireOwnPrivacyNumber,
  resolveClickToDialRequest,
  type ClickToDialAdmission,
  type ClickToDialDefaults,
  type PrivacyNumberLookup,
} from './click-to-dial-request';

/**
 * One attempt of a click-to-dial call, whoever queued it: admit it (a job queued directly is
 * checked, signed and recorded like an API request), hold it while the switch refuses channels,
 * run the call, apply the tenant's retry policy, leave the callback binding and settle the record.
 * The queue (callback-queue.ts) only carries jobs to this and turns its answer into BullMQ's terms.
 */
export interface ClickToDialUseCaseDeps {
  readonly tenants: Pick<TenantStore, 'get'>;
  /** The API keys that sign jobs queued directly. */
  readonly keys: Pick<TenantStore, 'signingKey'>;
  readonly calls: Pick<CallStore, 'record' | 'getById'>;
  readonly defaults: ClickToDialDefaults;
  /** The tenant's pool: a job queued directly presents only the tenant's own numbers too. */
  readonly numbers: PrivacyNumberLookup;
  /** Blacklist and rate limits for a job queued directly (calls made through the API passed them already). */
  readonly admission?: ClickToDialAdmission;
  readonly flow: ClickToDialDeps;
  readonly finished: (call: CallOutcome) => Promise<void>;
  readonly callbackBindingTtlSeconds: number;
  /** Where the callback binding is made routable at once (B redials X and reaches A). */
  readonly routes?: Pick<RouteIndex, 'put'>;
  /** Back-pressure: > 0 while the switch refuses new channels (ms to hold the queue). */
  readonly holdMs?: () => number;
  /** Back-pressure: told how long a call waited from being accepted to its first originate, ms (dispatch-pace.ts). */
  readonly dialled?: (waitedMs: number) => void;
  /**
   * A fleet of switches: each attempt is placed on one (recorded in the call's live state) and driven
   * there, whichever controller runs it. Without it every attempt goes to `flow.switch`.
   */
  readonly placement?: AttemptPlacement;
  readonly logger: Logger;
}

/** A switch an attempt can be placed on. */
export interface PlacedSwitch extends SwitchControl {
  readonly name: string;
  /** This controller's attempt starts there; the returned function ends it. */
  callStarted(): () => void;
}

export interface AttemptPlacement {
  /** The switch for a new attempt (up, active, with headroom), or null when none takes a call now. */
  choose(): PlacedSwitch | null;
  /** The switch an attempt was placed on; one that left the fleet answers as lost. */
  byName(name: string): PlacedSwitch;
  /** How long to hold the queue when no switch takes a call. */
  holdMs(): number;
}

/** What became of an attempt. */
export type AttemptDecision =
  | { readonly kind: 'refused'; readonly code: string; readonly field: string; readonly message: string }
  | { readonly kind: 'hold'; readonly ms: number }
  | { readonly kind: 'retry'; readonly at: number; readonly data: ClickToDialJobData }
  | { readonly kind: 'done'; readonly result: CallResult; readonly attempt: number };

/**
 * One attempt of a queued call. `queuedAt`: when the job was queued (a backend's job is recorded as a
 * call only when the worker takes it, an API call when it is accepted: the earlier of the two).
 */
export async function runClickToDialAttempt(deps: ClickToDialUseCaseDeps, data: unknown, queuedAt?: number): Promise<AttemptDecision> {
  const admitted = await admit(deps, data);
  if ('refused' in admitted) return admitted.refused;
  const { payload, call, tenant } = admitted;
  const attempt = payload.attempt ?? 1;
  if (call.state === 'completed') return { kind: 'done', result: call.result ?? 'failed', attempt };

  // The switch refuses new channels now (idle CPU, sessions): an attempt not yet dialled waits in the
  // queue instead of failing; one already under way is followed as usual.
  const holdMs = deps.holdMs?.() ?? 0;
  if (holdMs > 0 && !deps.placement) {
    const live = await deps.flow.live.get(call.id);
    if (!live || live.state === 'queued' || live.attempt < attempt) {
      deps.logger.info({ callId: call.id, holdMs }, 'switch at capacity: holding the call queue');
      return { kind: 'hold', ms: holdMs };
    }
  }

  let flow = deps.flow;
  let placedHere: (() => void) | undefined;
  if (deps.placement) {
    const placed = await placeAttempt(deps.placement, deps.flow.live, call.id, attempt);
    if (!placed) {
      const ms = deps.placement.holdMs();
      deps.logger.info({ callId: call.id, holdMs: ms }, 'no switch takes a call now: holding the call queue');
      return { kind: 'hold', ms };
    }
    flow = { ...deps.flow, switch: placed };
    placedHere = placed.callStarted();
  }
  const dialled = deps.dialled;
  if (dialled && attempt === 1) {
    const acceptedAt = Math.min(call.createdAt, queuedAt ?? call.createdAt);
    flow = { ...flow, dialling: () => dialled(Math.max(0, Date.now() - acceptedAt)) };
  }
  let outcome: Awaited<ReturnType<typeof runClickToDial>>;
  try {
    outcome = await runClickToDial(flow, { callId: call.id, attempt, request: requestOfCall(call), queuedAt: call.createdAt });
  } finally {
    placedHere?.();
  }

  // A call whose switch was lost may have rung A already: it is never dialled again.
  if (!outcome.aReached && !outcome.switchLost && isRetryable(outcome.result) && attempt < tenant.maxAttempts) {
    deps.logger.info({ callId: call.id, attempt, result: outcome.result }, 'A not reached; retrying per tenant policy');
    return { kind: 'retry', at: Date.now() + tenant.retryDelaySeconds * 1000, data: { ...payload, attempt: attempt + 1 } };
  }

  await settle(deps, outcome);
  return { kind: 'done', result: outcome.result, attempt };
}

/** The switch this attempt runs on: the one it was placed on already (by any controller), or a new choice. null: none takes a call now. */
async function placeAttempt(
  placement: AttemptPlacement,
  live: Pick<LiveCallStore, 'placementOf' | 'placeAttempt'>,
  callId: string,
  attempt: number,
): Promise<PlacedSwitch | null> {
  // One round trip when a switch takes calls: placing reads back the switch of an attempt placed before.
  const chosen = placement.choose();
  if (!chosen) {
    const placed = await live.placementOf(callId, attempt);
    return placed ? placement.byName(placed) : null;
  }
  const owner = await live.placeAttempt(callId, attempt, chosen.name);
  return owner === chosen.name ? chosen : placement.byName(owner);
}

type Admitted =
  | { readonly refused: Extract<AttemptDecision, { kind: 'refused' }> }
  | { readonly payload: ClickToDialJobData; readonly call: NonNullable<Awaited<ReturnType<CallStore['getById']>>>; readonly tenant: NonNullable<Awaited<ReturnType<TenantStore['get']>>> };

/** Valid, signed if it starts a call, of an active tenant, within the tenant's rules; recorded. */
async function admit(deps: ClickToDialUseCaseDeps, data: unknown): Promise<Admitted> {
  const refused = (code: string, field: string, message: string): Admitted => ({ refused: { kind: 'refused', code, field, message } });
  let payload: ClickToDialJobData;
  try {
    payload = validateClickToDialJob(data);
  } catch (err) {
    if (err instanceof InvalidJobError) return refused(err.code, err.field, err.message);
    throw err;
  }
  // A job queued directly has no call yet: it must be signed by its tenant, and is then recorded, so it
  // shows in the call API like any other. A job for a recorded call runs the recorded request.
  const callId = callIdFor(payload.tenantId, payload.requestId);
  const recorded = await deps.calls.getById(callId);
  if (!recorded) {
    if (!payload.auth) return refused('unsigned_job', 'auth', 'a job that starts a call must be signed with one of its tenant’s API keys');
    const signer = await deps.keys.signingKey(payload.auth.keyId);
    if (!signer || signer.tenantId !== payload.tenantId || !hasValidSignature(payload, signer.keyHash)) {
      return refused('bad_signature', 'auth', 'the signature is not that of an active API key of this tenant');
    }
  }
  const tenant = await deps.tenants.get(payload.tenantId);
  if (!tenant) return refused('unknown_tenant', 'tenantId', 'no such tenant');
  let request: ClickToDialRequest;
  try {
    request = resolveClickToDialRequest(tenant, payload, deps.defaults);
    if (recorded) return { payload, call: recorded, tenant };
    await requireOwnPrivacyNumber(deps.numbers, request);
    await deps.admission?.admitClickToDial(request);
  } catch (err) {
    if (err instanceof AppError) return refused(err.code, err.field ?? '(job)', err.message);
    throw err;
  }
  // Recorded with the other jobs of a burst (one INSERT for them); an earlier recording of the request wins.
  const call = await deps.calls.record({ id: callId, kind: 'click_to_dial', ...request });
  return { payload, call, tenant };
}

/** The record, and the binding that lets B call A back through X (routable at once; MySQL gets it through the CDR queue). */
async function settle(deps: ClickToDialUseCaseDeps, outcome: Awaited<ReturnType<typeof runClickToDial>>): Promise<void> {
  const { cdr } = outcome;
  const callbackBinding = outcome.bDialled
    ? {
        id: legUuid(cdr.callId, 'callback-binding', 0),
        tenantId: cdr.tenantId,
        x: cdr.x,
        a: cdr.a,
        b: cdr.b,
        expiresAt: cdr.endedAt + deps.callbackBindingTtlSeconds * 1000,
        callId: cdr.callId,
        userData: cdr.userData,
      }
    : undefined;
  await deps.finished({ cdr, callbackBinding });
  if (callbackBinding && deps.routes) {
    await deps.routes.put({
      ...callbackBinding,
      kind: 'callback',
      restriction: 'both',
      record: false,
      maxDurationSeconds: null,
      announcement: null,
      allowList: [],
    });
  }
}

export interface CancelDeps {
  readonly live: Pick<LiveCallStore, 'requestCancel' | 'update'>;
  readonly queue: { removeIfWaiting(callId: string): Promise<boolean> };
  readonly finished: (call: CallOutcome) => Promise<void>;
  /** Ends a leg (`uuid_kill`) on the switch the call was placed on (null: not placed yet, every switch). */
  readonly switchApi: (command: string, switchName: string | null) => Promise<string>;
  readonly logger: Logger;
}

/**
 * Cancels a call that has not ended, in whatever state it is: marked for the flow (which checks it
 * and hangs up whatever legs exist), taken off the queue if no worker has it yet (then nobody was
 * rung and the record is written here), and its legs killed on the switch.
 */
export async function cancelClickToDial(deps: CancelDeps, call: CallRecord, live: LiveCall | null): Promise<void> {
  await deps.live.requestCancel(call.id);
  if (await deps.queue.removeIfWaiting(call.id)) {
    const now = Date.now();
    await deps.finished({ cdr: cancelledBeforeDialling(call, now) });
    await deps.live.update(call.id, { state: 'completed', result: 'cancelled', endedAt: now, hangupCause: CANCEL_CAUSE, hangupSide: 'platform' });
    return;
  }
  const attempt = live?.attempt ?? 1;
  for (const leg of ['a', 'b'] as const) {
    await deps.switchApi(`uuid_kill ${legUuid(call.id, leg, attempt)} ${CANCEL_CAUSE}`, live?.switchName ?? null).catch((err: unknown) => {
      deps.logger.warn({ err, callId: call.id }, 'uuid_kill on cancel failed');
    });
  }
}

function cancelledBeforeDialling(call: CallRecord, now: number): CdrRecord {
  return {
    callId: call.id,
    tenantId: call.tenantId,
    kind: 'click_to_dial',
    bindingId: null,
    x: call.x,
    a: call.a,
    b: call.b,
    startedAt: call.createdAt,
    aRingAt: null,
    aAnswerAt: null,
    bRingAt: null,
    bAnswerAt: null,
    endedAt: now,
    talkSeconds: 0,
    hangupCause: CANCEL_CAUSE,
    hangupSide: 'platform',
    result: 'cancelled',
    recordingRef: null,
    userData: call.userData,
  };
}
