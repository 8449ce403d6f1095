/**
 * `npm run bench:switch-cost`: what each part of numguard's click-to-dial command costs the switch, per call.
 *
 * The same carrier as `bench:switch` (one sipp UAS answering after 0.2 s, hanging up 3 s later). Calls are
 * placed straight over the event socket at BENCH_RATE for BENCH_SECONDS per phase, in variants:
 *  - numguard: the command the click-to-dial flow sends (`attemptOriginate`), nobody listening to its events;
 *  - numguard-events: the same while a second connection holds the flow's subscription and filters;
 *  - numguard-no-ringback / numguard-no-figures: that command without A's ringback tone, or without the
 *    variables that make both legs keep their figures on the switch (the handover after a controller dies);
 *  - numguard-no-max-duration: that command without B's maximum duration armed at its answer (`api_on_answer`);
 *  - numguard-ampersand-bridge: that command with A's inline dialplan (`m:^:bridge:…^park inline`) as originate's
 *    one-app form `&bridge(…)`, which leaves A no way to hear the prompt when B fails;
 *  - numguard-no-ringback-no-figures, then -no-max-duration (B's `api_on_answer` left out too), then -no-park
 *    (A's dialplan `&bridge(…)` without continue_on_fail): numguard's command taken apart step by step towards bare;
 *  - bare: the minimal originate+bridge of `bench:switch` (no ringback, nothing kept);
 *  - bare-events: bare with the listener.
 * The switch's CPU (/proc) over each phase, until it has no channel left, divided by the calls the carrier
 * answered on both legs. A shared host's noise moves one phase by several ms per call, so every other variant
 * runs between two numguard phases, and each variant's cost is reported as its difference from the mean of
 * its two neighbours, over BENCH_ROUNDS rounds (mean, median, each). One JSON document on stdout; without
 * BENCH_SWITCH_ESL it prints a plain message and does nothing.
 *
 * Environment (defaults in brackets): BENCH_SWITCH_ESL host:port (required), BENCH_SWITCH_PASSWORD [ClueCon],
 * BENCH_SWITCH_PID [found from the listening socket], BENCH_SIPP_BIN [sipp], BENCH_SIPP_HOST [the ESL host],
 * BENCH_SIPP_PORT [5300], BENCH_SIPP_MEDIA_PORT [7300], BENCH_RATE [12 calls/s], BENCH_SECONDS [12],
 * BENCH_ROUNDS [4], BENCH_VARIANTS [every variant but numguard, comma-separated].
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { attemptOriginate, legUuid } from '../src/flows/click-to-dial';
import { CALL_EVENT_FILTERS, SUBSCRIBED_EVENTS } from '../src/flows/switch';
import { FIGURES_REALM, keepFiguresVariables } from '../src/flows/switch-figures';
import { BareEsl } from './support/bare-esl';
import { bareOriginate } from './support/bare-originate';
import { pidListeningOn, processCpuMs } from './support/proc-cpu';
import { SippCarrier } from './support/sipp-carrier';

const X = '700100000000001';
const RINGBACK = '%(2000,4000,440,480)';
const env = process.env;

interface Variant {
  readonly listens: boolean;
  /** The command makes both legs keep their figures on the switch (cleared after the phase). */
  readonly keepsFigures: boolean;
  readonly command: (dialString: (n: string) => string, a: string, b: string, callId: string) => string;
}

function numguard(dialString: (n: string) => string, a: string, b: string, callId: string): string {
  return attemptOriginate({
    request: { a, b, x: X, displayMode: 'fixed', ringTimeoutASeconds: 30, ringTimeoutBSeconds: 30, maxDurationSeconds: 3600 },
    callId,
    uA: legUuid(callId, 'a', 1),
    uB: legUuid(callId, 'b', 1),
    dialString,
    ringbackTone: RINGBACK,
  });
}

/** numguard's command with some of A's `{^^<sep>name=value<sep>…}` variables left out. */
function withoutAVariables(names: readonly string[]): Variant['command'] {
  return (dialString, a, b, callId) => {
    const command = numguard(dialString, a, b, callId);
    const open = 'originate {^^'.length;
    const separator = command.charAt(open);
    const close = command.indexOf(`}${dialString(a)}`);
    const kept = command
      .slice(open + 1, close)
      .split(separator)
      .filter((pair) => !names.includes(pair.slice(0, pair.indexOf('='))));
    return `originate {^^${separator}${kept.join(separator)}${command.slice(close)}`;
  };
}

const bare: Variant['command'] = (dialString, a, b, callId) => `originate ${bareOriginate(X, a, b, callId, dialString)}`;

/** B's maximum duration not armed at its answer: `api_on_answer` left out of B's variables. */
function withoutMaxDuration(command: string): string {
  const without = command.replace(/,api_on_answer='[^']*'/, '');
  if (without === command) throw new Error(`unexpected command: ${command}`);
  return without;
}

/** A's inline dialplan `m:^:bridge:…^park inline` as originate's own one-app form, `&bridge(…)`. */
function ampersandBridge(command: string): string {
  const bridge = /m:\^:bridge:(.*)\^park inline$/.exec(command);
  if (!bridge) throw new Error(`unexpected command: ${command}`);
  return `${command.slice(0, bridge.index)}&bridge(${bridge[1]})`;
}

const FIGURES_VARIABLES = Object.keys(keepFiguresVariables());
const withoutRingbackOrFigures = withoutAVariables(['ringback', ...FIGURES_VARIABLES]);

const VARIANTS: Record<string, Variant> = {
  numguard: { listens: false, keepsFigures: true, command: numguard },
  'numguard-events': { listens: true, keepsFigures: true, command: numguard },
  'numguard-no-ringback': { listens: false, keepsFigures: true, command: withoutAVariables(['ringback']) },
  'numguard-no-figures': { listens: false, keepsFigures: false, command: withoutAVariables(FIGURES_VARIABLES) },
  'numguard-no-max-duration': { listens: false, keepsFigures: true, command: (...args) => withoutMaxDuration(numguard(...args)) },
  'numguard-ampersand-bridge': { listens: false, keepsFigures: true, command: (...args) => ampersandBridge(numguard(...args)) },
  'numguard-no-ringback-no-figures': { listens: false, keepsFigures: false, command: withoutRingbackOrFigures },
  'numguard-no-ringback-no-figures-no-max-duration': {
    listens: false,
    keepsFigures: false,
    command: (...args) => withoutMaxDuration(withoutRingbackOrFigures(...args)),
  },
  'numguard-no-ringback-no-figures-no-max-duration-no-park': {
    listens: false,
    keepsFigures: false,
    command: (...args) => ampersandBridge(withoutMaxDuration(withoutAVariables(['ringback', ...FIGURES_VARIABLES, 'continue_on_fail'])(...args))),
  },
  bare: { listens: false, keepsFigures: false, command: bare },
  'bare-events': { listens: true, keepsFigures: false, command: bare },
};

interface Phase {
  readonly variant: string;
  readonly calls: number;
  readonly connected: number;
  readonly switchCpuMsPerCall: number;
  readonly eventsPerCall: number;
  readonly eventKbPerCall: number;
}

async function main(): Promise<void> {
  const esl = env.BENCH_SWITCH_ESL;
  if (!esl) {
    process.stdout.write('bench:switch-cost skipped: no switch configured. Set BENCH_SWITCH_ESL=host:port (see README "Capacity") to run it.\n');
    return;
  }
  const [host = '', port = ''] = esl.split(':');
  if (!host || !port) throw new Error('BENCH_SWITCH_ESL must be host:port');
  const addr = { host, port: Number(port), password: env.BENCH_SWITCH_PASSWORD ?? 'ClueCon' };
  const switchPid = env.BENCH_SWITCH_PID ? Number(env.BENCH_SWITCH_PID) : pidListeningOn(host, addr.port);
  if (switchPid === null) throw new Error('the switch is not a local process: set BENCH_SWITCH_PID');
  const rate = Number(env.BENCH_RATE ?? 12);
  const seconds = Number(env.BENCH_SECONDS ?? 12);
  const rounds = Number(env.BENCH_ROUNDS ?? 4);
  const compared = (env.BENCH_VARIANTS ?? Object.keys(VARIANTS).filter((v) => v !== 'numguard').join(',')).split(',').map((v) => v.trim());
  const unknown = compared.filter((v) => !(v in VARIANTS) || v === 'numguard');
  if (unknown.length) throw new Error(`BENCH_VARIANTS: unknown ${unknown.join(', ')}; known: ${Object.keys(VARIANTS).filter((v) => v !== 'numguard').join(', ')}`);
  const sipp = {
    bin: env.BENCH_SIPP_BIN ?? 'sipp',
    host: env.BENCH_SIPP_HOST ?? host,
    port: Number(env.BENCH_SIPP_PORT ?? 5300),
    mediaPort: Number(env.BENCH_SIPP_MEDIA_PORT ?? 7300),
  };
  const dialString = (n: string): string => `sofia/internal/${n}@${sipp.host}:${sipp.port}`;
  const log = (m: string): void => void process.stderr.write(`bench:switch-cost: ${m}\n`);

  const control = await BareEsl.connect(addr);
  const placer = await BareEsl.connect(addr);
  const listener = await BareEsl.connect(addr);
  const original = {
    sps: Number(/(\d+)/.exec(await control.api('fsctl sps'))?.[1] ?? 30),
    minIdleCpu: Number(/([\d.]+)/.exec(await control.api('fsctl min_idle_cpu'))?.[1] ?? 0),
  };
  const carrier = await SippCarrier.start({ ...sipp, ringMs: 200, talkMs: 3000, maxSeconds: 7200 });
  let placed = 0;

  const runPhase = async (name: string): Promise<Phase> => {
    const variant = VARIANTS[name]!;
    if (variant.listens) {
      await listener.listen([...SUBSCRIBED_EVENTS]);
      await listener.filter([['Event-Name', 'BACKGROUND_JOB'], ...CALL_EVENT_FILTERS]);
    } else await listener.listen(null);
    listener.take();
    carrier.reset();
    const cpuBefore = processCpuMs(switchPid) ?? NaN;
    const startedAt = Date.now();
    const calls = Math.round(rate * seconds);
    const callIds: string[] = [];
    for (let i = 0; i < calls; i++) {
      const wait = startedAt + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      placed++;
      const callId = `cost-${process.pid}-${placed}`;
      callIds.push(callId);
      placer.originate(variant.command(dialString, `1380${String(placed).padStart(7, '0')}`, `1390${String(placed).padStart(7, '0')}`, callId).slice('originate '.length));
    }
    await sleep(1500);
    while (Number(/(\d+) total/.exec(await control.api('show channels count'))?.[1] ?? 0) > 0) await sleep(250);
    const cpu = (processCpuMs(switchPid) ?? NaN) - cpuBefore;
    // What the figures hook kept is cleared outside the measured window (the flow deletes it once a call is settled).
    if (variant.keepsFigures) {
      for (const callId of callIds) {
        for (const leg of ['a', 'b'] as const) await control.api(`hash delete/${FIGURES_REALM}/${legUuid(callId, leg, 1)}`);
      }
    }
    const connected = carrier.legs().filter((l) => l.answered).length / 2;
    const traffic = listener.take();
    const events = Object.values(traffic.events).reduce((n, c) => n + c, 0);
    const phase: Phase = {
      variant: name,
      calls,
      connected,
      switchCpuMsPerCall: round(cpu / Math.max(connected, 1)),
      eventsPerCall: round(events / calls),
      eventKbPerCall: round(traffic.eventBytes / calls / 1024),
    };
    log(JSON.stringify(phase));
    return phase;
  };

  const phases: Phase[][] = [];
  const costs: Record<string, number[]> = Object.fromEntries(compared.map((v) => [v, []]));
  try {
    await control.api('fsctl sps 1000');
    await control.api('fsctl min_idle_cpu 0');
    await placer.listenForJobs(true);
    await runPhase('numguard'); // warm-up, not reported
    for (let r = 0; r < rounds; r++) {
      const round: Phase[] = [await runPhase('numguard')];
      for (const name of compared) {
        const phase = await runPhase(name);
        const after = await runPhase('numguard');
        const before = round[round.length - 1]!;
        costs[name]!.push(round2(phase.switchCpuMsPerCall - (before.switchCpuMsPerCall + after.switchCpuMsPerCall) / 2));
        round.push(phase, after);
      }
      phases.push(round);
    }
  } finally {
    await control.api(`fsctl sps ${original.sps}`);
    await control.api(`fsctl min_idle_cpu ${original.minIdleCpu}`);
    control.close();
    placer.close();
    listener.close();
    await carrier.stop();
  }
  const numguardPhases = phases.flat().filter((p) => p.variant === 'numguard');
  process.stdout.write(
    `${JSON.stringify(
      {
        rate,
        seconds,
        rounds,
        numguardSwitchCpuMsPerCall: { median: median(numguardPhases.map((p) => p.switchCpuMsPerCall)), phases: numguardPhases.length },
        differenceFromNumguard: Object.fromEntries(
          Object.entries(costs).map(([name, d]) => [name, { meanMs: round2(d.reduce((s, x) => s + x, 0) / d.length), medianMs: median(d), each: d }]),
        ),
        phases,
      },
      null,
      2,
    )}\n`,
  );
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return round2(s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
