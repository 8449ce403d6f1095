import { formatChannelVars, planCallerId, resolveDisplayMode } from '../../src/domain/caller-id';
import { ForbiddenError } from '../../src/domain/errors';

const X = '700100000000001';
const A = '13800000001';

describe('caller-ID policy', () => {
  it('fixed: both legs see X in number, name and callee ID', () => {
    const plan = planCallerId('fixed', X, A);
    expect(plan.aLeg).toMatchObject({ origination_caller_id_number: X, origination_caller_id_name: X, ignore_display_updates: 'true' });
    expect(plan.bLeg).toEqual({
      origination_caller_id_number: X,
      origination_caller_id_name: X,
      origination_callee_id_number: X,
      origination_callee_id_name: X,
    });
    expect(JSON.stringify(plan)).not.toContain(A);
  });

  it('passthrough: A still sees X, B sees A asserted with PAI', () => {
    const plan = planCallerId('passthrough', X, A);
    expect(plan.aLeg.origination_caller_id_number).toBe(X);
    expect(plan.bLeg).toMatchObject({ origination_caller_id_number: A, origination_caller_id_name: A, sip_cid_type: 'pid' });
  });

  it('pass-through needs both the platform and the tenant to allow it', () => {
    const open = { platformAllowsPassthrough: true, tenantAllowsPassthrough: true, tenantDefault: 'fixed' as const };
    expect(resolveDisplayMode(undefined, open)).toBe('fixed');
    expect(resolveDisplayMode('passthrough', open)).toBe('passthrough');
    expect(() => resolveDisplayMode('passthrough', { ...open, platformAllowsPassthrough: false })).toThrow(ForbiddenError);
    expect(() => resolveDisplayMode(undefined, { ...open, tenantAllowsPassthrough: false, tenantDefault: 'passthrough' })).toThrow(
      /not allowed for this tenant/,
    );
  });

  it('formats dial-string variables and refuses values that would break them', () => {
    expect(formatChannelVars({ a: '1', b: 'x' })).toBe('{a=1,b=x}');
    expect(() => formatChannelVars({ a: '1,evil=2' })).toThrow();
  });
});
