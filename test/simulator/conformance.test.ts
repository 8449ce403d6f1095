/**
 * Replays the recorded FreeSWITCH transcripts (shared/fs-traces) against the simulator and compares
 * replies, per-leg event order, header names (exact, order included), key header values and what the
 * phones saw in their INVITEs.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FreeSwitchSimulator, type OutboundCall } from './FreeSwitchSimulator';
import { compareStreams } from './compare';
import { behaviourFromText, loadTrace, LOCAL_TRACE_DIR, manifest, outboundCall, outboundCompareOptions, replay, replayOutbound, TRACE_DIR, parseMsg, type ManifestScenario, type ReplayResult, type TraceMsg } from './trace-replay';

const SCALE = 0.1;
/** Outbound-socket transcripts (FreeSWITCH's `socket ... async full` connecting to the controller); the test plays the controller. */
const OUTBOUND = ['13a', '13b', '13c', '13d', '13e'];

const INBOUND = ['01a', '01b', '01c', '02', '03', '04', '04b', '05', '05b', '06', '07', '08', '09', '09b', '10', '10b', '10c', '11', '11b', '12', '14'];
/**
 * Recordings of the same switch kept in this repository (recordings/, tools/record-b-refused.ts): a bridge whose
 * B channel cannot be created, to the `error/` endpoint (16a) and to an unknown sofia profile (16b).
 */
const LOCAL = ['16a', '16b', '17a', '17b'];

interface Invite { fromDisplay: string | null; fromUser: string; remotePartyId: string | null; pAssertedIdentity: string | null }
/** First INVITE each phone received, from the sipp trace. */
function invitesFromSip(file: string): Map<string, Invite> {
  const out = new Map<string, Invite>();
  const text = fs.readFileSync(path.join(TRACE_DIR, file), 'utf8');
  const blocks = text.split(/\n(?==== )/);
  for (const b of blocks) {
    const m = /^=== t=\d+ RECEIVED by phone \w \((\d+) /.exec(b);
    if (!m || !/\nINVITE /.test(b.slice(0, 200)) || out.has(m[1]!)) continue;
    const hdr = (n: string) => new RegExp(`\\n${n}: (.*)`).exec(b)?.[1] ?? null;
    const from = hdr('From')!;
    const fm = /^(?:"([^"]*)" )?<sip:([^@]+)@/.exec(from)!;
    out.set(m[1]!, { fromDisplay: fm[1] ?? null, fromUser: fm[2]!, remotePartyId: hdr('Remote-Party-ID'), pAssertedIdentity: hdr('P-Asserted-Identity') });
  }
  return out;
}

/** What a phone received, in order: status or request method, Remote-Party-ID and Reason (from the sipp trace). */
function receivedBy(file: string, number: string): Array<{ message: string; remotePartyId: string | null; reason: string | null }> {
  const text = fs.readFileSync(path.join(TRACE_DIR, file), 'utf8');
  const out: Array<{ message: string; remotePartyId: string | null; reason: string | null }> = [];
  for (const b of text.split(/\n(?==== )/)) {
    const m = /^=== t=\d+ RECEIVED by phone \w \((\d+) [^\n]*\n([^\n]*)/.exec(b);
    if (!m || m[1] !== number) continue;
    const hdr = (n: string) => new RegExp(`\\n${n}: (.*)`).exec(b)?.[1] ?? null;
    const status = /^SIP\/2\.0 (.*)$/.exec(m[2]!);
    out.push({ message: status ? status[1]! : m[2]!.split(' ')[0]!, remotePartyId: hdr('Remote-Party-ID'), reason: hdr('Reason') });
  }
  return out;
}

const available = fs.existsSync(TRACE_DIR);
const scenarios = available ? manifest() : [];
const localScenarios = manifest(LOCAL_TRACE_DIR);
(available ? describe : describe.skip)('simulator conformance with FreeSWITCH 1.10.12 traces', () => {
  for (const [key, dir] of [...INBOUND.map((k) => [k, TRACE_DIR] as const), ...LOCAL.map((k) => [k, LOCAL_TRACE_DIR] as const)]) {
    const sc = (dir === TRACE_DIR ? scenarios : localScenarios).find((s) => s.transcripts.some((t) => t.file.startsWith(key + '-')))!;
    const t = sc.transcripts.find((x) => x.file.startsWith(key + '-'))!;
    it(t.file, async () => {
      const sim = new FreeSwitchSimulator({ timeScale: SCALE });
      for (const p of sc.phones) sim.setPhone(p.number, behaviourFromText(p.behaviour));
      const { port } = await sim.start();
      try {
        const trace = loadTrace(t.file, dir);
        const res = await replay(sim, port, trace, SCALE);
        const uuids: Record<string, string> = {};
        if (sc.ids.uA) uuids[sc.ids.uA] = 'A';
        if (sc.ids.uB) uuids[sc.ids.uB] = 'B';
        const chosen = new Set<string>(Object.values(sc.ids));
        // Job-UUIDs the client chose itself (bgapi with a Job-UUID header) are compared too
        for (const m of trace) if (m.dir === 'send') { const j = /\nJob-UUID: (\S+)/.exec(m.raw); if (j) chosen.add(j[1]!); }
        const diffs = compareStreams(trace, res.recv, { uuids, eventUuids: chosen });
        expect(diffs).toEqual([]);
        // who closed the socket
        expect(res.closedByServer).toBe(t.closed_by_freeswitch_at_ms !== null);
        // what the phones saw
        if (sc.sip) {
          const want = invitesFromSip(sc.sip);
          for (const [num, inv] of want) {
            const got = sim.invitesTo(num)[0];
            expect(got && { fromDisplay: got.fromDisplay, fromUser: got.fromUser, remotePartyId: got.remotePartyId, pAssertedIdentity: got.pAssertedIdentity }).toEqual(inv);
          }
        }
      } finally {
        await sim.stop();
      }
    }, 20000);
  }

  /** Phones from the manifest: the caller (the UAC dialling X) is the outbound channel itself, the others are set up as phones. */
  function outboundCallOf(sim: FreeSwitchSimulator, sc: ManifestScenario, trace: TraceMsg[]): OutboundCall {
    const call = outboundCall(trace);
    const callerPhone = sc.phones.find((p) => p.number === call.callerNumber);
    for (const p of sc.phones) if (p !== callerPhone) sim.setPhone(p.number, behaviourFromText(p.behaviour));
    return { ...call, callerAddress: callerPhone?.address, caller: callerPhone && behaviourFromText(callerPhone.behaviour) };
  }

  for (const key of OUTBOUND) {
    const sc = scenarios.find((s) => s.transcripts.some((t) => t.file.startsWith(key + '-')))!;
    const t = sc.transcripts.find((x) => x.file.startsWith(key + '-') && !x.file.includes('-observer.'))!;
    const obs = sc.transcripts.find((x) => x.file.startsWith(key + '-') && x.file.includes('-observer.'))!;
    it(`${t.file} + ${obs.file} (outbound socket: the test is the controller and an inbound observer)`, async () => {
      const sim = new FreeSwitchSimulator({ timeScale: SCALE });
      const { port } = await sim.start();
      try {
        const trace = loadTrace(t.file);
        const observerTrace = loadTrace(obs.file);
        const call = outboundCallOf(sim, sc, trace);
        expect(call.callerNumber).toMatch(/^\d+$/);
        expect(call.destinationNumber).toMatch(/^\d+$/);
        const res = await replayOutbound(sim, trace, call, SCALE, { observer: { port, trace: observerTrace } });
        const opts = outboundCompareOptions(sim, sc, res.controllerPort!);
        expect(compareStreams(trace, res.recv, opts)).toEqual([]);
        expect(res.closedByServer).toBe(t.closed_by_freeswitch_at_ms !== null);
        expect(compareStreams(observerTrace, res.observer!.recv, opts)).toEqual([]);
        expect(res.observer!.closedByServer).toBe(obs.closed_by_freeswitch_at_ms !== null);
        if (sc.sip) {
          // INVITEs FreeSWITCH sent (to B); the caller's own INVITE is not FreeSWITCH's
          const want = invitesFromSip(sc.sip);
          want.delete(call.callerNumber);
          for (const [num, inv] of want) {
            const got = sim.invitesTo(num)[0];
            expect(got && { fromDisplay: got.fromDisplay, fromUser: got.fromUser, remotePartyId: got.remotePartyId, pAssertedIdentity: got.pAssertedIdentity }).toEqual(inv);
          }
          // what the caller got back: 100/180/183/200, the identity (Remote-Party-ID) in them, BYE or error with Reason
          const seen = sim.seenByCaller(call.callerNumber).map(({ message, remotePartyId, reason }) => ({ message, remotePartyId, reason }));
          expect(seen).toEqual(receivedBy(sc.sip, call.callerNumber));
        }
      } finally {
        await sim.stop();
      }
    }, 20000);
  }

  /**
   * AXE keying recorded on the real switch (tools/record-axe-dtmf.ts, recordings/ 20a-20c): play_and_get_digits
   * taking RFC 2833 digits, SIP INFO digits, or none, then playback and hangup. The controller's transcript
   * (myevents) is compared; the observer's differs from the simulator's by the vanilla dialplan's set/export
   * before `socket`, which this repository's dialplan does not run.
   */
  for (const key of ['20a', '20b', '20c']) {
    const sc = manifest(LOCAL_TRACE_DIR).find((s) => s.scenario.startsWith(key + '-'))!;
    const t = sc.transcripts.find((x) => !x.file.includes('-observer.'))!;
    it(`${t.file} (outbound socket, digits keyed: the test is the controller)`, async () => {
      const sim = new FreeSwitchSimulator({ timeScale: SCALE });
      await sim.start();
      try {
        const trace = loadTrace(t.file, LOCAL_TRACE_DIR);
        const caller = sc.phones.find((p) => p.label === 'C')!;
        const keyed = /keys "(\d+)" as (RFC 2833|SIP INFO)/.exec(caller.behaviour);
        const call: OutboundCall = {
          ...outboundCall(trace), callerAddress: caller.address,
          keys: { via: keyed?.[2] === 'SIP INFO' ? 'info' : 'rfc2833', tries: keyed ? [keyed[1]!] : [] },
        };
        const res = await replayOutbound(sim, trace, call, SCALE);
        const base = outboundCompareOptions(sim, sc, res.controllerPort!);
        const opts = {
          ...base,
          valueRewrites: [...(base.valueRewrites ?? []), {
            header: 'Application-Data', from: '127.0.0.3:8084 async full', to: `127.0.0.1:${res.controllerPort!} async full`,
            reason: 'recorded with the controller socket on 127.0.0.3:8084; the test listens on a free port',
          }],
        };
        expect(compareStreams(trace, res.recv, opts)).toEqual([]);
        expect(res.closedByServer).toBe(t.closed_by_freeswitch_at_ms !== null);
      } finally {
        await sim.stop();
      }
    }, 30000);
  }

  it('an outbound comparison fails on a mutated recording (self-check of the harness)', async () => {
    const sc = scenarios.find((s) => s.transcripts.some((t) => t.file.startsWith('13b-')))!;
    const t = sc.transcripts.find((x) => !x.file.includes('-observer.'))!;
    const obs = sc.transcripts.find((x) => x.file.includes('-observer.'))!;
    const trace = loadTrace(t.file);
    const observerTrace = loadTrace(obs.file);
    const sim = new FreeSwitchSimulator({ timeScale: SCALE });
    const { port } = await sim.start();
    try {
      const res = await replayOutbound(sim, trace, outboundCallOf(sim, sc, trace), SCALE, { observer: { port, trace: observerTrace } });
      const opts = outboundCompareOptions(sim, sc, res.controllerPort!);
      expect(compareStreams(trace, res.recv, opts)).toEqual([]);
      expect(compareStreams(observerTrace, res.observer!.recv, opts)).toEqual([]);
      const mutate = (tr: TraceMsg[], got: ReplayResult, from: string, to: string) => {
        const m = tr.map((x) => ({ ...x, raw: x.raw.split(from).join(to) }));
        expect(m).not.toEqual(tr);
        return compareStreams(m, got.recv, opts).join('\n');
      };
      const observer = res.observer!;
      expect(mutate(trace, res, 'Hangup-Cause: UNALLOCATED_NUMBER', 'Hangup-Cause: NORMAL_CLEARING')).toContain('Hangup-Cause: want "NORMAL_CLEARING" got "UNALLOCATED_NUMBER"');
      expect(mutate(trace, res, '+OK will linger', '+OK will not linger')).toContain('replies differ');
      // the connect reply (CHANNEL_DATA): a value, a reply header's value, the order of the reply headers
      expect(mutate(trace, res, 'Caller-Caller-ID-Number: 13700000003', 'Caller-Caller-ID-Number: 13700000009')).toContain('[reply] #0 command/reply [CHANNEL_DATA] %2BOK%0A Caller-Caller-ID-Number');
      expect(mutate(trace, res, 'Socket-Mode: async', 'Socket-Mode: static')).toContain('Socket-Mode: want "static" got "async"');
      expect(mutate(trace, res, 'Socket-Mode: async\nControl: full', 'Control: full\nSocket-Mode: async')).toContain('header names differ: missing=[] extra=[] (order)');
      // the linger notice
      expect(mutate(trace, res, 'Linger-Time: -1', 'Linger-Time: 30')).toContain('Linger-Time: want "30" got "-1"');
      expect(mutate(trace, res, 'Linger-Time: -1', 'Linger-Seconds: -1')).toContain('header names differ');
      // the observer: the dialplan apps before `socket`; the wall-clock date is compared by format only
      expect(mutate(observerTrace, observer, 'Application: export', 'Application: set')).toContain('event order differs');
      expect(mutate(observerTrace, observer, 'RFC2822_DATE%3DSun,%2022%20Nov%202026', 'RFC2822_DATE%3DMon,%2023%20Nov%202026')).toBe('');
      expect(mutate(observerTrace, observer, 'RFC2822_DATE%3DSun,%2022%20Nov%202026', 'RFC2822_DATE%3Dyesterday')).toContain('Application-Data: want "RFC2822_DATE=yesterday');
      const badDate = observer.recv.map((p) => ({ ...p, headers: p.headers.map(([k, v]): [string, string] => [k, k === 'Application-Data' && v.startsWith('RFC2822_DATE=') ? 'RFC2822_DATE=now' : v]) }));
      expect(compareStreams(observerTrace, badDate, opts).join('\n')).toContain('Application-Data: want the format');
    } finally {
      await sim.stop();
    }
  }, 20000);

  it('compare really fails on a wrong recording (self-check of the harness)', async () => {
    const sim = new FreeSwitchSimulator({ timeScale: SCALE });
    sim.setPhone('13800000001', { answer: 'busy' }); // the recording (03) answered
    const { port } = await sim.start();
    try {
      const trace = loadTrace('03-originate-answer-park.esl.jsonl');
      const res = await replay(sim, port, trace, SCALE, { maxWaitMs: 500 });
      const diffs = compareStreams(trace, res.recv, { uuids: { '3ae355ee-9e34-45aa-ab28-707ef9d12224': 'A' } });
      expect(diffs.length).toBeGreaterThan(0);
      // a mutated recording (different hangup cause) must also be detected
      const mutated = trace.map((m) => ({ ...m, raw: m.raw.replace('Hangup-Cause: NORMAL_CLEARING', 'Hangup-Cause: USER_BUSY') }));
      const sim2 = new FreeSwitchSimulator({ timeScale: SCALE });
      sim2.setPhone('13800000001', { answer: 'answer', hangupAfterMs: 2000 });
      const p2 = await sim2.start();
      const res2 = await replay(sim2, p2.port, trace, SCALE);
      expect(compareStreams(trace, res2.recv, { uuids: { '3ae355ee-9e34-45aa-ab28-707ef9d12224': 'A' } })).toEqual([]);
      expect(compareStreams(mutated, res2.recv, { uuids: { '3ae355ee-9e34-45aa-ab28-707ef9d12224': 'A' } }).length).toBeGreaterThan(0);
      await sim2.stop();
    } finally {
      await sim.stop();
    }
  }, 20000);

  it('parses the recordings it compares against', () => {
    const m = loadTrace('02-api-commands.esl.jsonl').filter((x) => x.dir === 'recv').map((x) => parseMsg(x.raw));
    expect(m[0]!.ct).toBe('auth/request');
  });
});
