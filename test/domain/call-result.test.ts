import { isRetryable, parseOriginateReply, resultOfAFailure, resultOfBFailure } from '../../src/domain/call-result';

describe('hangup causes to results (fs-traces 06–12)', () => {
  it.each([
    ['USER_BUSY', 'a_busy'],
    ['NO_ANSWER', 'a_no_answer'],
    ['CALL_REJECTED', 'a_rejected'],
    ['NORMAL_TEMPORARY_FAILURE', 'failed'],
  ])('A %s -> %s', (cause, result) => expect(resultOfAFailure(cause)).toBe(result));

  it.each([
    ['USER_BUSY', 'b_busy'],
    ['NO_ANSWER', 'b_no_answer'],
    ['ALLOTTED_TIMEOUT', 'b_no_answer'],
    ['CALL_REJECTED', 'b_rejected'],
    [undefined, 'failed'],
  ])('B %s -> %s', (cause, result) => expect(resultOfBFailure(cause)).toBe(result));

  it('parses originate replies as BACKGROUND_JOB bodies carry them', () => {
    expect(parseOriginateReply('+OK 1c6b5a0e-1111-4a2b-8c3d-123456789012\n')).toEqual({ ok: true });
    expect(parseOriginateReply('-ERR USER_BUSY\n')).toEqual({ ok: false, cause: 'USER_BUSY' });
  });

  it('retries only results where A was never reached', () => {
    expect(isRetryable('a_busy')).toBe(true);
    expect(isRetryable('a_rejected')).toBe(false);
    expect(isRetryable('cancelled')).toBe(false);
    expect(isRetryable('connected')).toBe(false);
  });
});
