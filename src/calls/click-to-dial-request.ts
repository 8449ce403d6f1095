import type { ClickToDialRequest } from '../domain/call';
import { resolveDisplayMode } from '../domain/caller-id';
import { AppError, ConflictError, ValidationError } from '../domain/errors';
import { deterministicUuid } from '../domain/ids';
import { parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import type { CallRecord } from '../stores/call-store';
import { GroupedReads } from '../stores/grouped-reads';
import type { Tenant } from '../stores/tenant-store';
import type { CreateClickToDialInput } from './types';

/** Platform defaults a request falls back on. */
export interface ClickToDialDefaults {
  readonly ringTimeoutASeconds: number;
  readonly ringTimeoutBSeconds: number;
  readonly maxDurationSeconds: number;
  readonly passthroughAllowed: boolean;
  /** CALL_END_WARNING_SECONDS: the warning before the maximum duration (0: none). */
  readonly endWarningSeconds?: number;
}

export const USER_DATA_MAX = 256;

/**
 * Abuse control for a new click-to-dial call (blacklist, calls per number per minute), run
 * before the call is first recorded, whichever way it came in. Throws an AppError to refuse.
 */
export interface ClickToDialAdmission {
  admitClickToDial(request: Pick<ClickToDialRequest, 'tenantId' | 'a' | 'b'>, now?: number): Promise<void>;
}

/** Where a tenant's own privacy numbers are looked up (its pool). */
export interface PrivacyNumberLookup {
  /** The number's state in the tenant's pool; null when it is not the tenant's. */
  numberState(tenantId: string, x: string): Promise<'enabled' | 'disabled' | 'quarantined' | null>;
}

/**
 * The same lookup, with concurrent asks for one number sharing a read: an ask made while reads are on their
 * way waits for the next one (never an answer read before it was asked), so a burst of jobs presenting
 * the same X costs a read, not one each.
 */
export function groupedNumberLookup(numbers: PrivacyNumberLookup): PrivacyNumberLookup {
  type State = Awaited<ReturnType<PrivacyNumberLookup['numberState']>>;
  const reads = new GroupedReads<string, NonNullable<State>>(
    async (keys) => {
      const found = new Map<string, NonNullable<State>>();
      await Promise.all(
        keys.map(async (key) => {
          const [tenantId = '', x = ''] = key.split('\n');
          const state = await numbers.numberState(tenantId, x);
          if (state !== null) found.set(key, state);
        }),
      );
      return found;
    },
    NUMBER_READS_PER_GROUP,
    1,
  );
  return { numberState: (tenantId, x) => reads.get(`${tenantId}\n${x}`) };
}

/** Distinct numbers read together at most (each its own query; usually one X per tenant). */
const NUMBER_READS_PER_GROUP = 20;

/**
 * A tenant presents only its own numbers (SPEC §4): the X of a call, named or the tenant's
 * default, must be an enabled number of the tenant's pool. Another tenant's number, or one the
 * operator never assigned, is refused like a binding on it would be.
 */
export async function requireOwnPrivacyNumber(numbers: PrivacyNumberLookup, request: Pick<ClickToDialRequest, 'tenantId' | 'x'>): Promise<void> {
  const state = await numbers.numberState(request.tenantId, request.x);
  if (state === null) throw new ConflictError('x_not_in_pool', 'x is not a number of this tenant’s pool', 'x');
  if (state !== 'enabled') throw new ConflictError('x_unavailable', `x is ${state}`, 'x');
}

/**
 * A click-to-dial request as the business sent it (HTTP body or queued job), checked and
 * completed with the tenant's policy and the platform defaults. Both ways in use this, so a
 * job queued directly is held to exactly the rules of the API.
 */
export function resolveClickToDialRequest(
  tenant: Tenant,
  input: CreateClickToDialInput,
  defaults: ClickToDialDefaults,
): ClickToDialRequest {
  if (tenant.status !== 'active') throw new AppError('tenant_disabled', 'tenant is not active');
  const a = parseRealNumber(input.a, 'a');
  const b = parseRealNumber(input.b, 'b');
  if (a === b) throw new ValidationError('b', 'a and b must be different numbers', 'same_number');
  const x = input.x !== undefined ? parsePrivacyNumber(input.x, 'x', input.x === tenant.defaultX) : tenant.defaultX;
  if (!x) throw new ValidationError('x', 'no privacy number given and the tenant has no default', 'no_privacy_number');
  if (input.userData !== undefined && input.userData.length > USER_DATA_MAX) {
    throw new ValidationError('userData', `userData is longer than ${USER_DATA_MAX} characters`, 'too_long');
  }
  const displayMode = resolveDisplayMode(input.displayMode, {
    platformAllowsPassthrough: defaults.passthroughAllowed,
    tenantAllowsPassthrough: tenant.passthroughAllowed,
    tenantDefault: tenant.defaultDisplayMode,
  });
  return {
    tenantId: tenant.id,
    requestId: input.requestId,
    a,
    b,
    x,
    displayMode,
    ringTimeoutASeconds: input.ringTimeoutASeconds ?? defaults.ringTimeoutASeconds,
    ringTimeoutBSeconds: input.ringTimeoutBSeconds ?? defaults.ringTimeoutBSeconds,
    maxDurationSeconds: input.maxDurationSeconds ?? defaults.maxDurationSeconds,
    endWarningSeconds: input.endWarningSeconds ?? (tenant.clickToDialEndWarning ? (defaults.endWarningSeconds ?? 0) : 0),
    record: input.record ?? false,
    userData: input.userData ?? null,
  };
}

/**
 * The call id of a tenant's request: the same (tenant, requestId) is the same call whichever
 * way it came in (API or queue), and it is the BullMQ job id, so queueing it twice is a no-op.
 */
export function callIdFor(tenantId: string, requestId: string): string {
  return deterministicUuid('click-to-dial', tenantId, requestId);
}

/** The request a recorded call was accepted with: the first one wins over any later copy. */
export function requestOfCall(call: CallRecord): ClickToDialRequest {
  return {
    tenantId: call.tenantId,
    requestId: call.requestId,
    a: call.a,
    b: call.b,
    x: call.x,
    displayMode: call.displayMode,
    ringTimeoutASeconds: call.ringTimeoutASeconds,
    ringTimeoutBSeconds: call.ringTimeoutBSeconds,
    maxDurationSeconds: call.maxDurationSeconds,
    endWarningSeconds: call.endWarningSeconds ?? 0,
    record: call.record,
    userData: call.userData,
  };
}
