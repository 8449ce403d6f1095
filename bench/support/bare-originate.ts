import { CALL_ID_VARIABLE } from '../../src/flows/switch';

/**
 * The floor of the switch benchmarks: the minimal two-leg call. Caller-ID variables for the fixed display (what
 * numguard sets), A's timeout, one bridge; both legs tagged with a call id as numguard's are, so the controller's
 * filters admit them when a listener holds its subscription.
 */
export function bareOriginate(x: string, a: string, b: string, callId: string, dialString: (n: string) => string): string {
  const tag = `${CALL_ID_VARIABLE}=${callId}`;
  const aVars = `origination_caller_id_number=${x},origination_caller_id_name=${x},ignore_display_updates=true,originate_timeout=30,hangup_after_bridge=true,${tag}`;
  const bVars = `origination_caller_id_number=${x},origination_caller_id_name=${x},origination_callee_id_number=${x},origination_callee_id_name=${x},originate_timeout=30,${tag}`;
  return `{${aVars}}${dialString(a)} &bridge({${bVars}}${dialString(b)})`;
}
