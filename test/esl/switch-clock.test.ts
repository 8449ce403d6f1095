import { SwitchClock } from '../../src/esl/switch-clock';

describe('SwitchClock: the switch\'s times on the controller\'s clock', () => {
  it('moves a stamp by the switch\'s skew plus the shortest transit seen, not by a late arrival', () => {
    const clock = new SwitchClock(30_000);
    expect(clock.toLocal(1_000_000)).toBe(1_000_000);
    // The switch runs 3 s behind; events take 2 ms, one 900 ms (the controller was busy).
    clock.observe(1_000_000, 1_003_002);
    clock.observe(1_000_100, 1_004_000);
    clock.observe(1_000_200, 1_003_202);
    expect(clock.toLocal(1_000_500)).toBe(1_003_502);
  });

  it('follows a clock that steps forward at once, and one that steps back within two windows', () => {
    const clock = new SwitchClock(1_000);
    clock.observe(0, 3_000); // 3 s behind
    expect(clock.toLocal(100)).toBe(3_100);
    clock.observe(3_500, 3_500); // sync_clock: the same clock as ours now
    expect(clock.toLocal(3_600)).toBe(3_600);
    clock.observe(5_000, 3_900); // stepped 1.1 s ahead: taken at once (a smaller lag)
    expect(clock.toLocal(5_000)).toBe(3_900);
    clock.observe(4_000, 4_000); // back to ours, in the next window: the ahead reading is still the least
    expect(clock.toLocal(4_000)).toBe(2_900);
    clock.observe(5_100, 5_100); // two windows on, only the recent readings count
    expect(clock.toLocal(5_200)).toBe(5_200);
  });

  it('forgets what it learnt (a reconnect may reach a restarted switch)', () => {
    const clock = new SwitchClock();
    clock.observe(0, 3_000);
    clock.forget();
    expect(clock.toLocal(100)).toBe(100);
    clock.observe(1_000, 1_001);
    expect(clock.toLocal(2_000)).toBe(2_001);
  });
});
