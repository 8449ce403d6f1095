import type { CallbackQueue } from './callback-queue';
import type { CallOutcome } from '../stores/call-outcome';
import { CLICK_TO_DIAL_JOB_VERSION } from './click-to-dial-job';
import type { CdrRecord } from '../domain/call';
import { AppError, ConflictError, NotFoundError } from '../domain/errors';
import type { Logger } from '../logger';
import type { CallRecord, CallStore } from '../stores/call-store';
import type { LiveCall, LiveCallStore } from '../stores/live-calls';
import type { TenantStore } from '../stores/tenant-store';
import {
  callIdFor,
  requestOfCall,
  requireOwnPrivacyNumber,
  resolveClickToDialRequest,
  type ClickToDialAdmission,
  type ClickToDialDefaults,
  type PrivacyNumberLookup,
} from './click-to-dial-request';
import type { TenantContext } from '../domain/tenant-context';
import type { CallView, ClickToDialService, CreateClickToDialInput, LegView } from './types';
import { cancelClickToDial } from './click-to-dial-use-case';

export interface ClickToDialServiceDeps {
  readonly tenants: Pick<TenantStore, 'get'>;
  readonly calls: Pick<CallStore, 'insert' | 'get'>;
  readonly cdrs: { get(tenantId: string, callId: string): Promise<CdrRecord | null> };
  readonly live: LiveCallStore;
  readonly queue: Pick<CallbackQueue, 'enqueue' | 'removeIfWaiting'>;
  /** Ends a call on the switch it was placed on (null: not placed yet, every switch), e.g. `uuid_kill`. */
  readonly switchApi: (command: string, switchName: string | null) => Promise<string>;
  readonly finished: (call: CallOutcome) => Promise<void>;
  readonly defaults: ClickToDialDefaults;
  /** The tenant's pool: X must be one of its enabled numbers. */
  readonly numbers: PrivacyNumberLookup;
  /** Blacklist and rate limits; an idempotent retry of an accepted request is not checked again. */
  readonly admission?: ClickToDialAdmission;
  /** Back-pressure: refuses (429/503 with Retry-After) a new call the switch or gateway would dial late. */
  readonly capacity?: { admitNewCall(): Promise<void> };
  readonly logger: Logger;
}

/** Accepting, showing and cancelling click-to-dial calls. The call itself runs in the callback worker. */
export class DefaultClickToDialService implements ClickToDialService {
  constructor(private readonly deps: ClickToDialServiceDeps) {}

  async create(ctx: TenantContext, input: CreateClickToDialInput): Promise<{ call: CallView; created: boolean }> {
    const tenant = await this.deps.tenants.get(ctx.tenantId);
    if (!tenant) throw new AppError('tenant_disabled', 'tenant is not active');
    const request = resolveClickToDialRequest(tenant, input, this.deps.defaults);
    const callId = callIdFor(tenant.id, request.requestId);
    const recorded = await this.deps.calls.get(tenant.id, callId);
    if (!recorded) {
      await requireOwnPrivacyNumber(this.deps.numbers, request);
      // Before the abuse counters: a call refused for capacity does not use up the caller's budget.
      await this.deps.capacity?.admitNewCall();
      await this.deps.admission?.admitClickToDial(request);
    }
    const { call, created } = recorded
      ? { call: recorded, created: false }
      : await this.deps.calls.insert({ id: callId, kind: 'click_to_dial', ...request });
    if (created || call.state !== 'completed') {
      // On an idempotent retry the job may be missing (Redis failed after the insert); queueing it
      // again is safe: the job id is the call id, and the leg claims stop any second ring.
      const { tenantId, ...fields } = requestOfCall(call);
      await this.deps.queue.enqueue({
        v: CLICK_TO_DIAL_JOB_VERSION,
        tenantId,
        ...fields,
        userData: fields.userData ?? undefined,
      });
    }
    if (created) {
      this.deps.logger.info({ callId: call.id, tenantId: tenant.id, a: call.a, b: call.b, x: call.x, mode: call.displayMode }, 'click-to-dial accepted');
    }
    // A call just recorded has neither live state nor a CDR yet: it is shown queued without asking.
    return { call: created ? viewOf(call, null, null) : await this.view(call), created };
  }

  async get(ctx: TenantContext, callId: string): Promise<CallView> {
    return this.view(await this.find(ctx, callId));
  }

  async cancel(ctx: TenantContext, callId: string): Promise<CallView> {
    const call = await this.find(ctx, callId);
    const live = await this.deps.live.get(call.id);
    if (call.state === 'completed' || live?.state === 'completed') {
      throw new ConflictError('call_already_ended', 'the call has already ended');
    }
    await cancelClickToDial(this.deps, call, live);
    this.deps.logger.info({ callId: call.id }, 'cancel requested');
    return this.view(call);
  }

  private async find(ctx: TenantContext, callId: string): Promise<CallRecord> {
    const call = /^[0-9a-f-]{36}$/.test(callId) ? await this.deps.calls.get(ctx.tenantId, callId) : null;
    if (!call) throw new NotFoundError('call');
    return call;
  }

  private async view(call: CallRecord): Promise<CallView> {
    const [live, cdr] = await Promise.all([this.deps.live.get(call.id), this.deps.cdrs.get(call.tenantId, call.id)]);
    return viewOf(call, live, cdr);
  }
}

function viewOf(call: CallRecord, live: LiveCall | null, cdr: CdrRecord | null): CallView {
  const ended = cdr?.endedAt ?? live?.endedAt ?? null;
  return {
    id: call.id,
    requestId: call.requestId,
    kind: call.kind,
    state: cdr ? 'completed' : (live?.state ?? call.state),
    result: cdr?.result ?? live?.result ?? call.result,
    displayMode: call.displayMode,
    x: call.x,
    a: call.a,
    b: call.b,
    userData: call.userData,
    createdAt: new Date(call.createdAt).toISOString(),
    legs: {
      a: legView(cdr?.aRingAt ?? live?.aRingAt ?? null, cdr?.aAnswerAt ?? live?.aAnswerAt ?? null, ended, live, 'a'),
      b: legView(cdr?.bRingAt ?? live?.bRingAt ?? null, cdr?.bAnswerAt ?? live?.bAnswerAt ?? null, ended, live, 'b'),
    },
    hangupSide: cdr?.hangupSide ?? live?.hangupSide ?? call.hangupSide,
    cdr,
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function legView(ringAt: number | null, answerAt: number | null, endedAt: number | null, live: LiveCall | null, leg: 'a' | 'b'): LegView {
  const dialled = leg === 'a' ? live !== null && live.state !== 'queued' : ringAt !== null || answerAt !== null || live?.state === 'calling_b';
  const state = endedAt !== null && dialled ? 'ended' : answerAt !== null ? 'answered' : ringAt !== null || dialled ? 'ringing' : 'idle';
  return { state, ringAt: iso(ringAt), answerAt: iso(answerAt), endAt: dialled ? iso(endedAt) : null };
}
