import type { EslEvent } from '../esl/event';
import type { SwitchClock } from '../esl/switch-clock';
import type { SwitchControl } from './switch';

/**
 * The switch keeps each leg's own figures when it ends, for whichever controller settles a call whose
 * controller died: the leg's `api_reporting_hook` runs
 * `hash insert/numguard_handover/<uuid>/${billsec}|${hangup_cause}|...` (mod_hash) in the channel's
 * reporting state, just before its CHANNEL_HANGUP_COMPLETE, whoever is or is not connected then.
 * Calls to X set the hook with uuid_setvar at the call's first moment; click-to-dial carries it in
 * each leg's originate variables. The side that settles a call deletes its legs' entries once the
 * result is written; sweepStaleFigures removes what nobody deleted (a controller killed in between).
 */
export const FIGURES_REALM = 'numguard_handover';

/** Channel variables the switch keeps, in this order, `|`-separated. New ones go at the end: entries kept before still parse. */
const KEPT_VARIABLES = [
  'billsec',
  'hangup_cause',
  'sip_hangup_disposition',
  'bridge_uepoch',
  'end_uepoch',
  'originate_disposition',
  'last_bridge_hangup_cause',
  'answer_uepoch',
  'progress_uepoch',
] as const;
type KeptVariable = (typeof KEPT_VARIABLES)[number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The switch's own account of how a leg ended. */
export interface SwitchFigures {
  readonly billsec: number | null;
  readonly hangupCause: string | null;
  readonly disposition: string | null;
  /** Epoch ms of the bridge; null when the leg was never bridged. */
  readonly bridgedAt: number | null;
  readonly endedAt: number | null;
  /** Why the leg this one bridged to was not reached, when it was not (or SUCCESS). */
  readonly bFailureCause: string | null;
  /** Epoch ms of the leg's answer; null when it never answered (or the entry predates the field). */
  readonly answeredAt: number | null;
  /** Epoch ms of the leg's first ringing; null when it never rang. */
  readonly ringingAt: number | null;
}

type Clock = Pick<SwitchClock, 'toLocal'>;
/** The times as the switch's clock has them. */
const SWITCH_CLOCK: Clock = { toLocal: (ms) => ms };

/** `clock` moves the switch's times onto the controller's clock. */
function figuresOf(value: (name: KeptVariable) => string | undefined, clock: Clock): SwitchFigures {
  const text = (name: KeptVariable): string | null => {
    const v = value(name)?.trim();
    return v ? v : null;
  };
  const epochMs = (name: 'bridge_uepoch' | 'end_uepoch' | 'answer_uepoch' | 'progress_uepoch'): number | null => {
    const v = text(name);
    return v && /^\d+$/.test(v) && v !== '0' ? clock.toLocal(Math.floor(Number(v) / 1000)) : null;
  };
  const billsec = text('billsec');
  return {
    billsec: billsec && /^\d+$/.test(billsec) ? Number(billsec) : null,
    hangupCause: text('hangup_cause'),
    disposition: text('sip_hangup_disposition'),
    bridgedAt: epochMs('bridge_uepoch'),
    endedAt: epochMs('end_uepoch'),
    bFailureCause: text('originate_disposition') ?? text('last_bridge_hangup_cause'),
    answeredAt: epochMs('answer_uepoch'),
    ringingAt: epochMs('progress_uepoch'),
  };
}

/** The figures of a leg's CHANNEL_HANGUP_COMPLETE, their times on the controller's clock. */
export function figuresOfEvent(e: EslEvent, clock: Clock): SwitchFigures {
  return figuresOf((name) => (name === 'hangup_cause' ? (e.header('Hangup-Cause') ?? e.variable(name)) : e.variable(name)), clock);
}

/**
 * The figures the switch kept (`hash select` of the reporting hook's entry); null when it kept none. Their times
 * stay on the switch's clock unless `clock` is given.
 */
export function parseKeptFigures(reply: string, clock: Clock = SWITCH_CLOCK): SwitchFigures | null {
  const text = reply.trim();
  if (!text || text.startsWith('-ERR') || !text.includes('|')) return null;
  const parts = text.split('|');
  return figuresOf((name) => parts[KEPT_VARIABLES.indexOf(name)], clock);
}

/** The `api_reporting_hook` that makes the switch keep a channel's figures in mod_hash when it ends. */
export function keepFiguresHook(uuid: string): string {
  if (!UUID.test(uuid)) throw new Error(`not a channel uuid: ${uuid}`);
  return hookKeyedBy(uuid);
}

// `api::arg`: the hook's own separator (switch_core_state_machine.c api_hook), so the value has no space to quote in a dial string.
function hookKeyedBy(key: string): string {
  return `hash::insert/${FIGURES_REALM}/${key}/${KEPT_VARIABLES.map((v) => `\${${v}}`).join('|')}`;
}

/** The same hook keyed by `${uuid}`, which the switch expands when the hook runs, in the channel that runs it: one string serves every leg. */
export const KEEP_OWN_FIGURES_HOOK = hookKeyedBy('${uuid}');

/**
 * The originate variables (A's `{}`) that make a click-to-dial's two legs keep their figures. A carries the hook
 * and exports it (export_vars): the bridge in A's dialplan copies it to B as B is created
 * (switch_ivr_originate, switch_channel_process_export). So B's dial string, the bridge's argument, holds no `${`:
 * the switch records that argument, expanded, as A's `last_arg` when A ends, and logs
 * `[CRIT] Invalid data (${last_arg} contains a variable)` when it holds one.
 * The switch refuses a `{}` value holding `${` unless the dial string says origination_nested_vars=true, and
 * refuses it in B's copy unless the bridging channel (A) has that variable (switch_ivr_originate, check_vars).
 */
export function keepFiguresVariables(): { origination_nested_vars: 'true'; api_reporting_hook: string; export_vars: 'api_reporting_hook' } {
  return { origination_nested_vars: 'true', api_reporting_hook: KEEP_OWN_FIGURES_HOOK, export_vars: 'api_reporting_hook' };
}

/** `uuid_setvar` of the hook on a channel that exists already. */
export function keepFiguresCommand(uuid: string): string {
  return `uuid_setvar ${uuid} api_reporting_hook ${keepFiguresHook(uuid)}`;
}

/**
 * What the switch kept of leg `uuid`, its times on the controller's clock; null when nothing (not ended yet, never
 * created, deleted, or the switch restarted).
 */
export async function keptFigures(sw: Pick<SwitchControl, 'api' | 'clock'>, uuid: string): Promise<SwitchFigures | null> {
  return parseKeptFigures(await sw.api(`hash select/${FIGURES_REALM}/${uuid}`, { quick: true }), sw.clock);
}

/** Deletes what the switch kept of leg `uuid` (not awaited by callers that have nothing left to do with it). */
export function forgetFigures(sw: Pick<SwitchControl, 'api'>, uuid: string): Promise<void> {
  if (!UUID.test(uuid)) return Promise.resolve();
  return sw.api(`hash delete/${FIGURES_REALM}/${uuid}`, { quick: true }).then(
    () => undefined,
    () => undefined,
  );
}

export interface StaleFiguresSweep {
  /** Entries of legs that ended longer ago than this are deleted: no settlement waits that long for them. */
  readonly olderThanMs: number;
  /** At most this many deletes per sweep (the next sweep takes the rest). */
  readonly maxDeletes: number;
  readonly now?: number;
}

/**
 * How the controllers that run workers sweep each switch: every 5 minutes, entries of legs ended over an hour
 * ago (a dead controller's call is settled within seconds by any controller running; one left unsettled an hour
 * is settled without the switch's figures, as when the switch itself restarted), at most 1000 a sweep.
 */
export const STALE_FIGURES_SWEEP = { everyMs: 5 * 60_000, olderThanMs: 3_600_000, maxDeletes: 1000 } as const;

/**
 * Deletes the kept figures of legs that ended long ago (`hash_dump db <realm>`, then one `hash delete` per
 * stale entry, at most maxDeletes). An entry with no readable end time is deleted too: nothing settles from it.
 * Resolves with how many were deleted.
 */
export async function sweepStaleFigures(sw: Pick<SwitchControl, 'api' | 'clock'>, opts: StaleFiguresSweep): Promise<number> {
  const dump = await sw.api(`hash_dump db ${FIGURES_REALM}`);
  const now = opts.now ?? Date.now();
  const prefix = `D/${FIGURES_REALM}_`;
  let deleted = 0;
  for (const line of dump.split('\n')) {
    if (deleted >= opts.maxDeletes) break;
    if (!line.startsWith(prefix)) continue;
    const rest = line.slice(prefix.length);
    const slash = rest.indexOf('/');
    const uuid = slash < 0 ? rest : rest.slice(0, slash);
    if (!UUID.test(uuid)) continue;
    const endedAt = parseKeptFigures(slash < 0 ? '' : rest.slice(slash + 1), sw.clock)?.endedAt ?? null;
    if (endedAt !== null && now - endedAt < opts.olderThanMs) continue;
    await forgetFigures(sw, uuid);
    deleted++;
  }
  return deleted;
}
