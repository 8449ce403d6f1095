/**
 * The call flows, as FreeSWITCH runs them: originate, the dialplan apps, bridge, hangup of either leg, channels
 * that cannot be created, an A phone's BYE racing the controller; with their timing (`sim.sleep`, `sim.timer`).
 */
import { randomUUID } from 'crypto';
import { AppRun, Channel, Endpoint, expandAppArg, exportedVars, nowUs, originateVars, parseEndpoint, parseVarBlock, SIP_HOST, snap } from './channel';
import type { SimContext } from './context';
import { FAILURE_STATUS, socketTemplate } from './outbound';
import type { TemplateEvent, TemplateKey } from './templates';
import type { PhoneBehaviour, SeenInvite } from './types';

export class CallFlows {
  constructor(private readonly sim: SimContext) {}

  private behaviourOf(num: string): PhoneBehaviour { return this.sim.phones.get(num) ?? { answer: 'answer' }; }

  private recordInvite(ch: Channel): void {
    const pid = ch.v('sip_cid_type') === 'pid';
    const name = ch.fromDisplay;
    const uri = `<sip:${ch.fromUser}@${SIP_HOST}>`;
    const ident = (name ? `"${name}" ` : '') + uri;
    const inv: SeenInvite = {
      uuid: ch.uuid, number: ch.ep.number, fromDisplay: name || null, fromUser: ch.fromUser,
      remotePartyId: pid ? null : `${ident};party=calling;screen=yes;privacy=off`, pAssertedIdentity: pid ? ident : null, at: Date.now(),
    };
    const list = this.sim.invites.get(ch.ep.number) ?? [];
    list.push(inv);
    this.sim.invites.set(ch.ep.number, list);
  }

  /**
   * `originate {vars}endpoint &app(arg)`, or `originate {vars}endpoint <apps> inline` (api or bgapi). The arguments
   * are split on spaces outside '…' (the quotes removed), as mod_commands does; the inline dialplan is
   * `app:arg,app:arg` or, with `m:<c>:` first, separated by <c> (mod_dptools inline_dialplan_hunt).
   */
  originate(arg: string, job: NonNullable<Channel['job']>): void {
    const [aleg = '', exten = 'park', dialplan] = splitArgs(arg);
    const { vars: given, rest } = parseVarBlock(aleg);
    const vars = originateVars(given, aleg);
    const endpoint = rest.trim();
    let appName = 'park'; let appArg = '';
    let dialplanRest: AppRun[] = [];
    if (exten.startsWith('&')) {
      const appStr = exten.slice(1);
      const p = appStr.indexOf('(');
      if (p >= 0) { appName = appStr.slice(0, p); appArg = appStr.slice(p + 1, appStr.lastIndexOf(')')); } else { appName = appStr; }
    } else if (dialplan === 'inline') {
      const apps = inlineDialplan(exten);
      const first = apps.shift();
      if (first) { appName = first.name; appArg = first.arg; }
      dialplanRest = apps;
    }
    const ep = parseEndpoint(endpoint);
    const uuid = vars.find(([k]) => k === 'origination_uuid')?.[1] ?? randomUUID();
    this.sim.originateTotal++;
    this.sim.originates.set(uuid, (this.sim.originates.get(uuid) ?? 0) + 1);
    const beh = this.behaviourOf(ep.number);
    // a bridge as the originate's app: one-shot (04); as the first app of an inline dialplan, recording 17a
    const ch = new Channel('A', uuid, ep, vars, beh, appName !== 'bridge' ? '03' : dialplan === 'inline' ? '17a' : '04');
    const vmap = new Map(vars);
    ch.callerNum = vmap.get('origination_caller_id_number') ?? '0000000000';
    ch.callerName = vmap.get('origination_caller_id_name') ?? '';
    ch.origNum = ch.callerNum; ch.origName = ch.callerName; ch.ani = ch.callerNum;
    ch.fromDisplay = ch.callerName; ch.fromUser = ch.callerNum;
    if (vmap.has('origination_callee_id_name')) ch.calleeName = vmap.get('origination_callee_id_name')!;
    if (vmap.has('origination_callee_id_number')) ch.calleeNum = vmap.get('origination_callee_id_number')!;
    ch.job = job;
    ch.dialplanRest = dialplanRest;
    this.sim.chans.set(uuid, ch);
    this.sim.sessionsSinceStartup++;
    const firstApp: AppRun = { name: appName, arg: appArg, uuid: randomUUID() };
    setImmediate(() => void this.runA(ch, firstApp));
  }

  private finishJob(ch: Channel, out: string): void {
    const j = ch.job;
    if (!j) return;
    ch.job = undefined;
    if (j.api) j.api(out);
    else this.sim.esl.backgroundJob(j.id, j.cmd, j.arg, out);
  }

  private async runA(ch: Channel, firstApp: AppRun): Promise<void> {
    const beh = ch.behaviour;
    const mode = beh.answer ?? 'answer';
    const refused = refusedCause(ch.ep, beh);
    if (refused) {
      // no channel was created: no events, only the job's result (16a: the same for a bridge)
      ch.hungup = true; ch.destroyed = true; this.sim.chans.delete(ch.uuid);
      this.finishJob(ch, `-ERR ${refused}\n`);
      return;
    }
    this.sim.events.emit(ch, 'CHANNEL_CREATE');
    if (mode === 'unreachable') { ch.tpl = '06'; await this.failOriginate(ch, 'NO_ROUTE_DESTINATION', 'recv_refuse', 0); return; }
    await this.sim.sleep(20);
    if (ch.hungup) return;
    this.recordInvite(ch);
    if (mode === 'busy' || mode === 'decline') {
      ch.tpl = mode === 'busy' ? '06' : '08';
      await this.failOriginate(ch, mode === 'busy' ? 'USER_BUSY' : 'CALL_REJECTED', 'recv_refuse', 20);
      return;
    }
    ch.ringing = true; ch.progressUs = nowUs();
    this.sim.events.emit(ch, 'CHANNEL_PROGRESS');
    const timeout = Number(ch.v('originate_timeout') ?? 60) * 1000;
    if (mode === 'no-answer' || (beh.ringMs ?? 0) >= timeout) {
      this.sim.timer(ch, timeout, () => {
        if (ch.hungup) return;
        ch.tpl = '07';
        void this.failOriginate(ch, 'NO_ANSWER', 'send_cancel', 0, true);
      });
      return;
    }
    if (beh.ringMs) { await this.sim.sleep(beh.ringMs); if (ch.hungup) return; }
    this.answer(ch);
    await this.sim.sleep(20);
    if (ch.hungup) return;
    if (beh.byeRacing === 'originate-reply-before') {
      // answered, so the originate succeeded; its reply comes after the hangup's events
      const job = ch.job; ch.job = undefined;
      await this.hangup(ch, 'NORMAL_CLEARING', 'remote');
      ch.job = job;
      this.finishJob(ch, `+OK ${ch.uuid}\n`);
      return;
    }
    this.finishJob(ch, `+OK ${ch.uuid}\n`);
    if (beh.byeRacing === 'originate-reply-after') { this.phoneBye(ch); return; }
    ch.appQueue = ch.appQueue.then(() => this.runApp(ch, firstApp, true));
  }

  private answer(ch: Channel): void {
    ch.answered = true; ch.ringing = false; ch.answeredUs = nowUs();
    this.sim.events.emit(ch, 'CHANNEL_ANSWER');
    // api_on_answer*: each names an API command, run as the leg is answered (switch_channel_api_on; no channel event)
    for (const [name, value] of ch.vars) if (name.startsWith('api_on_answer') && value) void this.sim.esl.api(value, null);
    if (ch.inbound) this.sim.outbound.toCaller(ch, '200 OK');
    if (ch.behaviour.hangupAfterMs !== undefined) {
      this.sim.timer(ch, ch.behaviour.hangupAfterMs, () => void this.hangup(ch, 'NORMAL_CLEARING', 'remote'));
    }
  }

  private async failOriginate(ch: Channel, cause: string, disposition: string, destroyDelay: number, jobFirst = false): Promise<void> {
    ch.hungup = true; ch.cause = cause; ch.disposition = disposition; ch.hangupUs = this.sim.now();
    for (const t of ch.timers) clearTimeout(t);
    this.sim.events.emit(ch, 'CHANNEL_HANGUP');
    if (jobFirst) this.finishJob(ch, `-ERR ${cause}\n`);
    this.sim.events.emit(ch, 'CHANNEL_HANGUP_COMPLETE');
    this.finishJob(ch, `-ERR ${cause}\n`);
    // A call to X refused before answer (trace 13c): the linger notice follows CHANNEL_HANGUP_COMPLETE.
    if (ch.inbound) this.sim.outbound.outboundHungup(ch);
    if (destroyDelay) await this.sim.sleep(destroyDelay);
    this.destroy(ch);
  }

  destroy(ch: Channel): void {
    if (ch.destroyed) return;
    ch.destroyed = true;
    this.sim.events.emit(ch, 'CHANNEL_DESTROY');
    this.sim.chans.delete(ch.uuid);
  }

  /** ring_ready (the app, or the uuid_ring_ready api): a call to X's caller gets 180 Ringing once; a later 180 from B is not relayed again. */
  ringReady(ch: Channel): void {
    if (ch.inbound && !ch.answered && !ch.ringing) { ch.ringing = true; ch.progressUs = nowUs(); this.sim.outbound.toCaller(ch, '180 Ringing'); }
    this.sim.events.emit(ch, 'CHANNEL_PROGRESS');
  }

  /** Execute one dialplan app on an A leg. */
  async runApp(ch: Channel, given: AppRun, isOriginateApp = false): Promise<void> {
    if (ch.hungup) return;
    const app = given.arg ? { ...given, arg: expandAppArg(ch, given.arg) } : given;
    if (ch.answered && !ch.flipped && ch.role === 'A' && !ch.inbound) {
      ch.flipped = true;
      const [n, nm] = [ch.callerNum, ch.callerName];
      ch.callerNum = ch.calleeNum; ch.callerName = ch.calleeName; ch.calleeNum = n; ch.calleeName = nm;
    }
    if (ch.inbound) {
      this.sim.outbound.socketPark(ch);
      // A caller who keys digits renders from 20a-20c (its own dialplan and media) until a bridge.
      if (!ch.keys || app.name === 'bridge') ch.tpl = socketTemplate(ch.tpl, app);
      // play_and_get_digits: 20a (RFC 2833 digits, DTMF-Source RTP) or 20b (SIP INFO, ENDPOINT); 20c when none are taken.
      if (app.name === 'play_and_get_digits') ch.tpl = ch.keys?.via === 'info' ? '20b' : '20a';
    } else {
      if (app.name === 'bridge' && !isOriginateApp && ch.tpl === '03') ch.tpl = ch.setVars.has('ringback') ? '05' : '09';
      if (app.name === 'bridge' && !isOriginateApp) { const t = refusedTemplate(app.arg, this.behaviourOf(parseEndpoint(parseVarBlock(app.arg).rest.trim()).number)); if (t) ch.tpl = t; }
      if (app.name === 'record_session') ch.tpl = '14';
      if (app.name === 'playback' || app.name === 'hangup') { if (!['09b', '10b', '10c', '16a', '16b', '17b'].includes(ch.tpl)) ch.tpl = '09b'; }
    }
    ch.apps.push(app);
    ch.curApp = app;
    this.sim.events.emit(ch, 'CHANNEL_EXECUTE', app);
    const done = (response = '_none_') => {
      ch.apps = ch.apps.filter((x) => x !== app);
      ch.lastApp = app;
      if (!ch.hungup) this.sim.events.emit(ch, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response });
      if (ch.socketReleased && !ch.hungup) this.sim.outbound.releaseOutbound(ch);
    };
    switch (app.name) {
      case 'park':
        ch.parkApp = app;
        this.sim.events.emit(ch, 'CHANNEL_PARK');
        return; // completes at hangup
      case 'set': case 'export': {
        const i = app.arg.indexOf('=');
        if (i > 0) ch.setVars.set(app.arg.slice(0, i), app.arg.slice(i + 1));
        done(); return;
      }
      case 'answer':
        if (!ch.answered) { this.sim.events.emit(ch, 'CHANNEL_PROGRESS_MEDIA'); this.answer(ch); }
        done(); return;
      case 'pre_answer':
        this.sim.events.emit(ch, 'CHANNEL_PROGRESS_MEDIA');
        if (ch.inbound && !ch.answered) this.sim.outbound.toCaller(ch, '183 Session Progress');
        done(); return;
      case 'ring_ready':
        this.ringReady(ch); done(); return;
      case 'sleep':
        await this.sim.sleep(Number(app.arg) || 0); done(); return;
      case 'playback': {
        await this.sim.sleep(playbackMs(app.arg));
        done(ch.hungup ? 'FILE NOT PLAYED' : 'FILE PLAYED'); return;
      }
      case 'play_and_get_digits': {
        const got = await this.collectDigits(ch, app.arg);
        if (ch.hungup) return;
        const pg = playAndGetDigitsArgs(app.arg);
        // The switch sets the variable only when digits were taken (20a, 20b), and read_result either way (20c: failure).
        if (got !== null) ch.setVars.set(pg.variable, got);
        else ch.tpl = '20c';
        ch.setVars.set('read_result', got === null ? 'failure' : 'success');
        ch.apps = ch.apps.filter((x) => x !== app);
        ch.lastApp = app;
        this.sim.events.emit(ch, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
        if (ch.socketReleased) this.sim.outbound.releaseOutbound(ch);
        return;
      }
      case 'record_session': {
        ch.recording = app.arg; ch.recStartUs = nowUs();
        await this.sim.sleep(20);
        if (ch.hungup) return;
        this.sim.events.emit(ch, 'RECORD_START', undefined);
        done(); return;
      }
      case 'hangup':
        await this.hangup(ch, app.arg || 'NORMAL_CLEARING', 'local', undefined, app);
        return;
      case 'bridge':
        await this.bridge(ch, app, isOriginateApp);
        return;
      default:
        done(); return;
    }
  }

  /**
   * play_and_get_digits on a call to X: the prompt, then what the caller keys on that try (a DTMF event per
   * digit); a try whose digits do not match (too few, or none before the timeout) plays the invalid file and
   * the prompt again, up to `tries`. The digits, or null.
   */
  private async collectDigits(ch: Channel, arg: string): Promise<string | null> {
    const pg = playAndGetDigitsArgs(arg);
    for (let i = 0; i < pg.tries; i++) {
      await this.sim.sleep(playbackMs(pg.file));
      if (ch.hungup) return null;
      const keyed = ch.keys?.tries[i] ?? '';
      for (const d of keyed.slice(0, pg.max)) {
        await this.sim.sleep(120);
        if (ch.hungup) return null;
        ch.dtmfDigit = d;
        this.sim.events.emit(ch, 'DTMF');
      }
      const got = keyed.slice(0, pg.max);
      if (got.length >= pg.min && pg.regexp.test(got)) return got;
      await this.sim.sleep(got.length === 0 ? pg.timeoutMs : pg.digitTimeoutMs);
      if (i + 1 < pg.tries) await this.sim.sleep(playbackMs(pg.invalidFile));
    }
    return null;
  }

  private async bridge(a: Channel, app: AppRun, oneShot: boolean): Promise<void> {
    a.bridgeApp = app;
    const { vars: given, rest } = parseVarBlock(app.arg);
    // the bridging channel's exports, unless the dial string's own `{}` sets the same name
    const vars = originateVars([...given, ...exportedVars(a).filter(([name]) => !given.some(([g]) => g === name))], app.arg, a);
    const ep = parseEndpoint(rest.trim());
    const vmap = new Map(vars);
    const uuid = vmap.get('origination_uuid') ?? randomUUID();
    this.sim.originateTotal++;
    this.sim.originates.set(uuid, (this.sim.originates.get(uuid) ?? 0) + 1);
    const refused = refusedCause(ep, this.behaviourOf(ep.number));
    if (refused) { await this.refusedBridge(a, app, ep, uuid, refused, oneShot); return; }
    const b = new Channel('B', uuid, ep, vars, this.behaviourOf(ep.number), a.inbound || a.tpl === '04' || a.tpl === '17a' ? a.tpl : '05');
    b.callerNum = vmap.get('origination_caller_id_number') ?? a.callerNum;
    b.callerName = vmap.get('origination_caller_id_name') ?? a.callerName;
    b.origNum = a.origNum; b.origName = a.origName;
    b.ani = a.ani; b.fromDisplay = b.callerName; b.fromUser = b.callerNum;
    b.otherSnap = snap(a);
    if (vmap.has('origination_callee_id_name')) b.calleeName = vmap.get('origination_callee_id_name')!;
    if (vmap.has('origination_callee_id_number')) b.calleeNum = vmap.get('origination_callee_id_number')!;
    b.peer = a; a.peer = b;
    this.sim.chans.set(uuid, b);
    this.sim.sessionsSinceStartup++;
    if (!oneShot) await this.sim.sleep(20);
    if (a.hungup) return;
    this.sim.events.emit(b, 'CHANNEL_CREATE');
    const beh = b.behaviour;
    const mode = beh.answer ?? 'answer';
    if (mode !== 'unreachable') this.recordInvite(b);
    if (a.behaviour.byeRacing === 'bridge-started') { this.phoneBye(a); return; }
    const cof = a.v('continue_on_fail') === 'true';
    const failB = async (cause: string, disp: string, tpl: TemplateKey) => {
      if (tpl === '09' && a.tpl === '17a') tpl = '17b';
      b.tpl = tpl; a.tpl = tpl === '09' ? (cof ? '09b' : '09') : tpl;
      if (tpl === '10' && cof) a.tpl = '10b';
      b.hungup = true; b.cause = cause; b.disposition = disp; b.hangupUs = this.sim.now();
      for (const t of b.timers) clearTimeout(t);
      this.sim.events.emit(b, 'CHANNEL_HANGUP');
      this.sim.events.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      await this.sim.sleep(20);
      this.destroy(b);
      a.bridgeFailCause = cause;
      a.bridgeApp = undefined;
      if (a.hungup) return;
      if (cof) {
        a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
        this.sim.events.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
        if (oneShot) await this.nextDialplanApp(a);
        else if (a.behaviour.byeRacing === 'bridge-failed') this.phoneBye(a);
      } else {
        await this.hangup(a, cause, 'local', undefined, undefined, true);
      }
    };
    if (mode === 'unreachable') { await failB('NO_ROUTE_DESTINATION', 'recv_refuse', '09'); return; }
    await this.sim.sleep(oneShot ? 0 : 0);
    if (mode === 'busy' || mode === 'decline') { await failB(mode === 'busy' ? 'USER_BUSY' : 'CALL_REJECTED', 'recv_refuse', '09'); return; }
    b.ringing = true; b.progressUs = nowUs();
    this.sim.events.emit(b, 'CHANNEL_PROGRESS');
    a.calleeName = b.calleeName; a.calleeNum = b.calleeNum;
    // a call to X: FreeSWITCH relays B's 180 to the caller (13a: A's CHANNEL_PROGRESS)
    if (a.inbound && !a.answered && !a.ringing) { a.ringing = true; a.progressUs = nowUs(); this.sim.events.emit(a, 'CHANNEL_PROGRESS'); this.sim.outbound.toCaller(a, '180 Ringing'); }
    const leg = vmap.get('leg_timeout'); const ot = vmap.get('originate_timeout');
    const timeoutMs = (leg ? Number(leg) : ot ? Number(ot) : 60) * 1000;
    const timeoutCause = leg ? 'ALLOTTED_TIMEOUT' : 'NO_ANSWER';
    const ring = mode === 'no-answer' ? Infinity : beh.ringMs ?? 0;
    if (ring >= timeoutMs) {
      await new Promise<void>((r) => this.sim.timer(b, timeoutMs, r));
      if (a.hungup || b.hungup) return;
      await failB(timeoutCause, 'send_cancel', timeoutCause === 'ALLOTTED_TIMEOUT' ? '10' : '10c');
      return;
    }
    if (ring) { await new Promise<void>((r) => this.sim.timer(b, ring, r)); if (a.hungup || b.hungup) return; }
    if (a.behaviour.byeRacing === 'b-answer-before') { this.phoneBye(a); return; }
    this.answer(b);
    // ... and B's 200 OK: the caller's leg is answered now (13a: PROGRESS_MEDIA, ANSWER, then BRIDGE)
    if (a.inbound && !a.answered) { this.sim.events.emit(a, 'CHANNEL_PROGRESS_MEDIA'); this.answer(a); }
    a.bridgeOk = true; a.bridgedUs = b.bridgedUs = nowUs();
    if (a.tpl === '09') a.tpl = '05';
    this.sim.events.emit(a, 'CHANNEL_BRIDGE');
    if (a.behaviour.byeRacing === 'b-answer-after') this.phoneBye(a);
    // the bridge ends through hangup() of either leg
  }

  /**
   * Hang up a leg. by = 'remote' (the phone sent BYE) or 'local' (FreeSWITCH hangs up: uuid_kill,
   * sched_hangup, hangup app, bridge consequences, shutdown).
   */
  async hangup(ch: Channel, cause: string, by: 'remote' | 'local', tpl?: TemplateKey, hangupApp?: AppRun, afterFailedBridge = false): Promise<void> {
    if (ch.hungup) return;
    if (ch.role === 'B') return this.hangupB(ch, cause, by);
    const a = ch;
    if (!a.answered && !a.inbound) {
      // cancel while ringing (11/11b)
      a.tpl = cause === 'ORIGINATOR_CANCEL' ? '11b' : '11';
      await this.failOriginate(a, cause, 'send_cancel', 0);
      return;
    }
    const b = a.peer && !a.peer.hungup && a.bridgeApp ? a.peer : undefined;
    if (tpl) a.tpl = tpl;
    else if (a.inbound) { /* a call to X keeps the outbound-socket recording chosen by its apps */ }
    else if (b && a.bridgeOk && by === 'local' && !hangupApp) { a.tpl = '12'; b.tpl = '12'; }
    else if (b && a.bridgeOk && by === 'remote') { a.tpl = '05'; b.tpl = '05'; }
    else if (!afterFailedBridge && !b && !a.bridgeFailCause && !hangupApp && a.tpl !== '14') a.tpl = a.parkApp ? '03' : a.tpl;
    if (a.tpl === '10c' && afterFailedBridge) a.tpl = '10';
    a.hungup = true; a.cause = cause; a.hangupUs = this.sim.now();
    a.disposition = by === 'remote' ? 'recv_bye' : 'send_bye';
    // a call to X refused before answer gets a final error response (13c: 404), not a BYE
    if (a.inbound && !a.answered) a.disposition = by === 'remote' ? 'recv_cancel' : 'send_refuse';
    if (a.inbound) {
      // 13b: BYE with the cause; 13c (not answered): a final error response; 13a: 200 OK to the caller's BYE
      if (by === 'local') this.sim.outbound.toCaller(a, a.answered ? 'BYE' : FAILURE_STATUS[cause] ?? '480 Temporarily Unavailable', cause);
      else if (a.answered) this.sim.outbound.toCaller(a, '200 OK', undefined, false);
    }
    for (const t of a.timers) clearTimeout(t);
    this.sim.events.emit(a, 'CHANNEL_HANGUP');
    if (b && a.bridgeOk) {
      b.hungup = true; b.cause = 'NORMAL_CLEARING'; b.hangupUs = this.sim.now(); b.disposition = 'send_bye';
      for (const t of b.timers) clearTimeout(t);
      this.sim.events.emit(b, 'CHANNEL_HANGUP');
      if (by === 'local') this.sim.events.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      await this.sim.sleep(by === 'local' ? 20 : 1);
      this.sim.events.emit(a, 'CHANNEL_UNBRIDGE');
    } else if (b) {
      // B still ringing: cancel it (the bridge then fails with ORIGINATOR_CANCEL)
      a.bridgeFailCause = 'ORIGINATOR_CANCEL';
      b.hungup = true; b.cause = 'ORIGINATOR_CANCEL'; b.hangupUs = this.sim.now(); b.disposition = 'send_cancel';
      for (const t of b.timers) clearTimeout(t);
      this.sim.events.emit(b, 'CHANNEL_HANGUP');
      this.sim.events.emit(b, 'CHANNEL_HANGUP_COMPLETE');
    }
    // running apps complete, innermost first
    for (const ap of [...a.apps].reverse()) {
      a.apps = a.apps.filter((x) => x !== ap);
      a.lastApp = ap;
      // the socket app parked the call; it unparks before the socket app itself completes (13a-13e)
      if (a.inbound && ap === a.parkApp) this.sim.events.emit(a, 'CHANNEL_UNPARK');
      this.sim.events.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...ap, response: ap.name === 'playback' ? 'FILE NOT PLAYED' : '_none_' });
    }
    // CS_EXECUTE -> CS_HANGUP -> CS_REPORTING; only myevents (ALL) subscribers see these
    if (a.inbound) { this.sim.events.emit(a, 'CHANNEL_STATE'); this.sim.events.emit(a, 'CHANNEL_STATE'); }
    if (b) {
      if (a.bridgeOk && by === 'remote') this.sim.events.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      this.destroy(b);
    }
    if (a.recording) this.sim.events.emit(a, 'RECORD_STOP');
    this.sim.events.emit(a, 'CHANNEL_HANGUP_COMPLETE');
    this.finishJob(a, `-ERR ${cause}\n`);
    if (a.inbound) this.sim.outbound.outboundHungup(a);
    // a lingering outbound socket holds the session: CHANNEL_DESTROY comes once it is released (13a observer)
    if (!a.inbound || !a.outConn || a.outConn.closed) this.destroy(a);
  }

  /**
   * The originate's dialplan goes on after an app that did not end the call: its next app, or, after the last,
   * the hangup of switch_core_standard_on_execute ("has executed the last dialplan instruction": NORMAL_CLEARING).
   */
  private async nextDialplanApp(a: Channel): Promise<void> {
    const next = a.dialplanRest.shift();
    if (!next) { await this.hangup(a, 'NORMAL_CLEARING', 'local'); return; }
    if (a.behaviour.byeRacing === 'bridge-failed') this.phoneBye(a);
    await this.runApp(a, next, true);
  }

  /** The phone of an A leg sends BYE now. */
  phoneBye(ch: Channel): void { void this.hangup(ch, 'NORMAL_CLEARING', 'remote'); }

  /**
   * A bridge whose B channel cannot be created (recordings 16a/16b): nothing reaches B's phone; with a sofia
   * endpoint the half-made session only shows CHANNEL_DESTROY; the bridge completes at once with the cause in
   * originate_disposition / originate_failed_cause / DIALSTATUS, and without continue_on_fail A is hung up with it.
   */
  private async refusedBridge(a: Channel, app: AppRun, ep: Endpoint, uuid: string, cause: string, oneShot: boolean): Promise<void> {
    if (!ep.channelName.startsWith('error/')) {
      // the session was never named nor attached to A (16b: Channel-Name N/A, its own Channel-Call-UUID)
      const b = new Channel('B', uuid, { ...ep, channelName: 'N/A' }, parseVarBlock(app.arg).vars, this.behaviourOf(ep.number), '16b');
      b.hungup = true;
      this.sim.events.emit(b, 'CHANNEL_DESTROY');
      b.destroyed = true;
    }
    a.bridgeFailCause = cause; a.bridgeRefused = true; a.bridgeApp = undefined;
    if (a.hungup) return;
    if (a.v('continue_on_fail') === 'true') {
      a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
      this.sim.events.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
      if (oneShot) await this.nextDialplanApp(a);
      else if (a.behaviour.byeRacing === 'bridge-failed') this.phoneBye(a);
    } else {
      await this.hangup(a, cause, 'local', undefined, undefined, true);
    }
  }

  /** B leg hangs up (its phone sent BYE) while bridged. */
  private async hangupB(b: Channel, cause: string, by: 'remote' | 'local'): Promise<void> {
    const a = b.peer!;
    b.hungup = true; b.cause = cause; b.hangupUs = this.sim.now(); b.disposition = by === 'remote' ? 'recv_bye' : 'send_bye';
    for (const t of b.timers) clearTimeout(t);
    if (a.tpl === '17a' || a.tpl === '14') b.tpl = a.tpl;
    else { a.tpl = '04'; b.tpl = '04'; }
    this.sim.events.emit(b, 'CHANNEL_HANGUP');
    this.sim.events.emit(b, 'CHANNEL_HANGUP_COMPLETE');
    await this.sim.sleep(20);
    if (a.hungup) { this.destroy(b); return; }
    this.sim.events.emit(a, 'CHANNEL_UNBRIDGE');
    const app = a.bridgeApp;
    a.bridgeApp = undefined;
    const oneShot = !a.parkApp;
    if (a.v('hangup_after_bridge') === 'true' || oneShot) {
      // A ends with B's cause (17a: B's ALLOTTED_TIMEOUT from sched_hangup; 04: its NORMAL_CLEARING)
      a.hungup = true; a.cause = b.cause; a.hangupUs = this.sim.now(); a.disposition = 'send_bye';
      for (const t of a.timers) clearTimeout(t);
      this.sim.events.emit(a, 'CHANNEL_HANGUP');
      for (const ap of [...a.apps].reverse()) {
        a.apps = a.apps.filter((x) => x !== ap); a.lastApp = ap;
        this.sim.events.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...ap, response: '_none_' });
      }
      this.destroy(b);
      if (a.recording) this.sim.events.emit(a, 'RECORD_STOP');
      this.sim.events.emit(a, 'CHANNEL_HANGUP_COMPLETE');
      this.destroy(a);
      if (a.inbound) this.sim.outbound.outboundHungup(a);
    } else if (app) {
      a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
      this.sim.events.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
      this.destroy(b);
      if (a.socketReleased) this.sim.outbound.releaseOutbound(a);
    }
  }

  /** `api_reporting_hook`: the API command it names runs, its `${variables}` expanded, in the channel's reporting state. */
  reportingHook(ch: Channel): void {
    const hook = ch.v('api_reporting_hook');
    if (!hook || ch.reported) return;
    ch.reported = true;
    const te: TemplateEvent = { n: 'CHANNEL_HANGUP_COMPLETE', app: '', h: [] };
    // `cmd::arg` or `cmd arg`; only the argument is expanded (api_hook)
    const colon = hook.indexOf(':');
    const space = hook.indexOf(' ');
    const split = colon >= 0 && hook[colon + 1] === ':' ? [hook.slice(0, colon), hook.slice(colon + 2)] : space >= 0 ? [hook.slice(0, space), hook.slice(space + 1)] : [hook, ''];
    const expanded = split[1]!.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => this.sim.events.varValue(ch, name, '', te) ?? '');
    void this.sim.esl.api(`${split[0]} ${expanded}`, null);
  }
}

/** The cause with which the switch refuses to create a channel to `ep` (`error/<CAUSE>`, or a phone set to `refused`), or undefined. */
function refusedCause(ep: Endpoint, beh: PhoneBehaviour): string | undefined {
  if (ep.channelName.startsWith('error/')) return ep.channelName.slice(6) || 'USER_BUSY';
  if (beh.answer === 'refused') return beh.refuseCause ?? 'DESTINATION_OUT_OF_ORDER';
  return undefined;
}

/** The recording a bridge to a channel that cannot be created renders: 16a (error/ endpoint, no B event) or 16b (sofia). */
function refusedTemplate(arg: string, beh: PhoneBehaviour): TemplateKey | undefined {
  const ep = parseEndpoint(parseVarBlock(arg).rest.trim());
  if (!refusedCause(ep, beh)) return undefined;
  return ep.channelName.startsWith('error/') ? '16a' : '16b';
}

/** `<min> <max> <tries> <timeout> <terminators> <file> <invalid_file> <var_name> <regexp> [<digit_timeout>]` (mod_dptools). */
function playAndGetDigitsArgs(arg: string): { min: number; max: number; tries: number; timeoutMs: number; file: string; invalidFile: string; variable: string; regexp: RegExp; digitTimeoutMs: number } {
  const [min, max, tries, timeout, , file, invalidFile, variable, regexp, digitTimeout] = splitArgs(arg);
  return {
    min: Number(min), max: Number(max), tries: Number(tries) || 1, timeoutMs: Number(timeout) || 0, file: file ?? '', invalidFile: invalidFile ?? '',
    variable: variable ?? 'digits', regexp: new RegExp(`^(?:${regexp ?? '.*'})$`), digitTimeoutMs: Number(digitTimeout ?? timeout) || 0,
  };
}

/** Duration of a playback: tone_stream://%(on,off,f1,f2);loops=N → (on+off)*N ms; files: 1 s. */
function playbackMs(arg: string): number {
  const m = /%\((\d+),(\d+)[^)]*\)(?:;loops=(\d+))?/.exec(arg);
  if (m) return (Number(m[1]) + Number(m[2])) * Number(m[3] ?? 1);
  return 1000;
}

/** switch_separate_string on ' ': spaces inside '…' do not split, and the quotes are removed. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = ''; let quoted = false; let started = false;
  for (const c of s.trim()) {
    if (c === "'") { quoted = !quoted; started = true; continue; }
    if (c === ' ' && !quoted) { if (started) { out.push(cur); cur = ''; started = false; } continue; }
    cur += c; started = true;
  }
  if (started) out.push(cur);
  return out;
}

/** mod_dptools inline_dialplan_hunt: `app:arg` entries separated by ',' or by <c> after a leading `m:<c>:`. */
function inlineDialplan(s: string): AppRun[] {
  let separator = ',';
  if (s.length > 3 && s.startsWith('m:') && s[3] === ':') { separator = s[2]!; s = s.slice(4); }
  return s.split(separator).filter((x) => x.trim()).map((entry) => {
    const i = entry.indexOf(':');
    return { name: (i >= 0 ? entry.slice(0, i) : entry).trim(), arg: i >= 0 ? entry.slice(i + 1) : '', uuid: randomUUID() };
  });
}
