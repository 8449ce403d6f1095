import type { DisplayMode } from './call';
import { ForbiddenError } from './errors';

/**
 * Caller-ID policy: the exact channel variables that decide what each phone sees.
 *
 * FreeSWITCH copies numbers into several SIP headers by default (fs-traces README §03–§05, §13):
 *  - a B leg inherits the caller-ID *name* of the answered A leg ("Outbound Call", or A's number),
 *    so the name is always set explicitly;
 *  - Remote-Party-ID is sent unless sip_cid_type says otherwise; pid sends P-Asserted-Identity instead;
 *  - display updates after answer carry the other leg's callee ID, so A's leg ignores them.
 * Every variable that can carry a number is therefore set here, for both legs.
 */
export type ChannelVars = Readonly<Record<string, string>>;

export interface CallerIdPlan {
  /** Variables on the originate of A's leg: A sees X. */
  readonly aLeg: ChannelVars;
  /** Variables in the bridge `{}` for B's leg: B sees X (fixed) or A's real number (passthrough). */
  readonly bLeg: ChannelVars;
}

export function planCallerId(mode: DisplayMode, x: string, a: string): CallerIdPlan {
  const aLeg: ChannelVars = {
    origination_caller_id_number: x,
    origination_caller_id_name: x,
    ignore_display_updates: 'true',
  };
  if (mode === 'fixed') {
    return {
      aLeg,
      bLeg: {
        origination_caller_id_number: x,
        origination_caller_id_name: x,
        // What A's leg learns about B (callee ID) stays X too.
        origination_callee_id_number: x,
        origination_callee_id_name: x,
      },
    };
  }
  return {
    aLeg,
    bLeg: {
      origination_caller_id_number: a,
      origination_caller_id_name: a,
      // Carriers that accept pass-through expect the asserted identity (PAI), not Remote-Party-ID (trace 05b).
      sip_cid_type: 'pid',
      origination_callee_id_number: x,
      origination_callee_id_name: x,
    },
  };
}

export interface DisplayPolicy {
  /** Admin switch for the whole deployment. */
  readonly platformAllowsPassthrough: boolean;
  /** Tenant setting. */
  readonly tenantAllowsPassthrough: boolean;
  readonly tenantDefault: DisplayMode;
}

/** The display mode a request gets: its own choice, else the tenant default; pass-through only where both admin and tenant allow it. */
export function resolveDisplayMode(requested: DisplayMode | undefined, policy: DisplayPolicy): DisplayMode {
  const mode = requested ?? policy.tenantDefault;
  if (mode === 'passthrough') {
    if (!policy.platformAllowsPassthrough) {
      throw new ForbiddenError('passthrough_forbidden', 'pass-through display is disabled on this platform', 'displayMode');
    }
    if (!policy.tenantAllowsPassthrough) {
      throw new ForbiddenError('passthrough_forbidden', 'pass-through display is not allowed for this tenant', 'displayMode');
    }
  }
  return mode;
}

/**
 * `{k=v,k2=v2}` as FreeSWITCH dial strings take them. Names and values are held to characters in
 * which the switch has nothing to separate, quote or expand (`$`, braces, commas, spaces, quotes):
 * numbers, uuids, durations and flags are all these variables ever carry.
 */
export function formatChannelVars(vars: ChannelVars): string {
  const parts = Object.entries(vars).map(([k, v]) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(k)) throw new Error(`channel variable name ${k} is not a plain name`);
    if (!/^[A-Za-z0-9_.:+@-]*$/.test(v)) throw new Error(`channel variable ${k} has a character a dial string cannot carry`);
    return `${k}=${v}`;
  });
  return `{${parts.join(',')}}`;
}
