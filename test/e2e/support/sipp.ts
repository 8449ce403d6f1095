/**
 * sipp-driven SIP phones for the end-to-end suite, and the suite's environment.
 *
 * Each phone is one sipp process in UAS mode, bound to one address/port, that handles
 * exactly one call (-m 1) with one of the scenarios in test/e2e/sipp/ and then exits.
 * sipp writes every SIP message it sends/receives to a message file (-trace_msg), which
 * is where receivedInvite() reads the INVITE (and its caller-ID headers) from.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitForUdpBind } from '../../support/udp-bind';

export type PhoneBehaviour = 'answer' | 'busy' | 'no-answer' | 'answer-then-bye';

export interface PhoneOptions {
  /** The phone's own number (informational; used in dialString()). */
  readonly number: string;
  /** UDP port sipp listens on. */
  readonly port: number;
  readonly behaviour: PhoneBehaviour;
  /** answer / answer-then-bye: time between 180 Ringing and 200 OK. Default 0. */
  readonly ringMs?: number;
  /** answer-then-bye: time between ACK and the phone's BYE. Default 1000. */
  readonly talkMs?: number;
  /** Address sipp binds to; FreeSWITCH must be able to reach it. Default E2E_SIPP_HOST or 127.0.0.1. */
  readonly host?: string;
  /** sipp quits (exit code != 0) after this long whatever happens. Default 120 s. */
  readonly timeoutMs?: number;
  /** sipp binary. Default E2E_SIPP_BIN or "sipp". */
  readonly sippBin?: string;
}

export interface ReceivedInvite {
  /** Request-URI of the INVITE, e.g. "sip:13800000001@127.0.0.1:5090". */
  readonly requestUri: string;
  /** Value of the From header (name stripped), e.g. `"700..." <sip:700...@127.0.0.1>;tag=x`. */
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly remotePartyId?: string;
  readonly pAssertedIdentity?: string;
  /** The whole INVITE as sipp logged it (start line, headers, body). */
  readonly raw: string;
}

export interface PhoneExit {
  /** sipp's exit code: 0 = the call went as the scenario says, 1 = it did not, 99 = no call. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Phone {
  readonly number: string;
  readonly host: string;
  readonly port: number;
  /** FreeSWITCH dial string reaching this phone through a sofia profile (default "internal"). */
  dialString(profile?: string): string;
  /** Resolves with the first INVITE the phone received; rejects after timeoutMs (default 10 s). */
  receivedInvite(timeoutMs?: number): Promise<ReceivedInvite>;
  /** Resolves when sipp exits; rejects after timeoutMs (default 30 s) without killing it. */
  waitForExit(timeoutMs?: number): Promise<PhoneExit>;
  /** Kills sipp (if still running) and removes its temporary files. Safe to call twice. */
  stop(): Promise<void>;
  /** Everything sipp logged so far (messages file), for test failure output. */
  log(): string;
}

const SCENARIOS: Record<PhoneBehaviour, string> = {
  answer: 'uas-answer.xml',
  busy: 'uas-busy.xml',
  'no-answer': 'uas-no-answer.xml',
  'answer-then-bye': 'uas-answer-then-bye.xml',
};

/** Directory holding the scenario XML files. */
export const SCENARIO_DIR = resolve(__dirname, '..', 'sipp');

export async function startPhone(opts: PhoneOptions): Promise<Phone> {
  const host = opts.host ?? sippHostFromEnv();
  const bin = opts.sippBin ?? process.env.E2E_SIPP_BIN ?? 'sipp';
  const dir = mkdtempSync(join(tmpdir(), `e2e-phone-${opts.port}-`));
  const messageFile = join(dir, 'messages.log');
  const args = [
    '-sf', join(SCENARIO_DIR, SCENARIOS[opts.behaviour]),
    '-i', host,
    '-p', String(opts.port),
    '-m', '1',
    '-d', String(Math.max(0, Math.round(opts.ringMs ?? 0))),
    '-timeout', `${Math.ceil((opts.timeoutMs ?? 120_000) / 1000)}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_msg',
    '-message_file', messageFile,
    '-trace_err',
    '-error_file', join(dir, 'errors.log'),
  ];
  if (opts.behaviour === 'answer-then-bye') args.push('-set', 'talk_ms', String(Math.round(opts.talkMs ?? 1000)));

  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<PhoneExit>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const spawnError = new Promise<never>((_, rej) =>
    child.once('error', (e) => rej(new Error(`cannot run ${bin}: ${e.message}`))),
  );
  spawnError.catch(() => undefined);

  const readLog = (): string => (existsSync(messageFile) ? readFileSync(messageFile, 'utf8') : '');

  try {
    await Promise.race([waitForUdpBind(host, opts.port, 5000, child), spawnError]);
  } catch (e) {
    kill(child);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sipp phone ${opts.number} on ${host}:${opts.port} did not start: ${(e as Error).message} ${stderr}`, { cause: e });
  }

  let stopped = false;
  return {
    number: opts.number,
    host,
    port: opts.port,
    dialString: (profile = 'internal') => `sofia/${profile}/${opts.number}@${host}:${opts.port}`,
    async receivedInvite(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const invite = parseFirstInvite(readLog());
        if (invite) return invite;
        if (Date.now() > deadline) {
          throw new Error(`phone ${opts.number} (${host}:${opts.port}) received no INVITE within ${timeoutMs} ms`);
        }
        await sleep(50);
      }
    },
    async waitForExit(timeoutMs = 30_000) {
      return withTimeout(exited, timeoutMs, `sipp phone ${opts.number} still running after ${timeoutMs} ms`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        kill(child);
        await withTimeout(exited, 3000, 'sipp did not exit').catch(() => child.kill('SIGKILL'));
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => readLog() + (stderr ? `\n[stderr]\n${stderr}` : ''),
  };
}

/** Where FreeSWITCH's event socket is, from E2E_ESL_HOST/PORT/PASSWORD; null when the e2e suite is not configured. */
export function eslAddressFromEnv(): { host: string; port: number; password: string } | null {
  const host = process.env.E2E_ESL_HOST?.trim();
  if (!host) return null;
  const port = Number(process.env.E2E_ESL_PORT?.trim() || '8021');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`E2E_ESL_PORT is not a port: ${process.env.E2E_ESL_PORT}`);
  return { host, port, password: process.env.E2E_ESL_PASSWORD ?? 'ClueCon' };
}

/** Address the sipp phones bind to (must be reachable from FreeSWITCH). E2E_SIPP_HOST, default 127.0.0.1. */
export function sippHostFromEnv(): string {
  return process.env.E2E_SIPP_HOST?.trim() || '127.0.0.1';
}

/** First UDP port for phones (E2E_SIPP_PORT_BASE, default 5090); tests add an offset per phone. */
export function sippPortBaseFromEnv(): number {
  const base = Number(process.env.E2E_SIPP_PORT_BASE?.trim() || '5090');
  if (!Number.isInteger(base) || base < 1024 || base > 65000) throw new Error(`E2E_SIPP_PORT_BASE is not a port: ${process.env.E2E_SIPP_PORT_BASE}`);
  return base;
}

/** Parses sipp's -trace_msg log and returns the first INVITE it received, if any. */
export function parseFirstInvite(log: string): ReceivedInvite | undefined {
  // Entries are separated by a dashed line with a timestamp; the header line of an entry says
  // "UDP message received [N] bytes :" (or TCP), followed by a blank line and the message.
  const entries = log.split(/^-{20,} .*$/m);
  for (const entry of entries) {
    const m = /^\s*(?:UDP|TCP|TLS|SCTP) message received \[\d+\] bytes :\r?\n\r?\n([\s\S]*)$/.exec(entry);
    if (!m || !m[1]) continue;
    const raw = m[1].replace(/\s+$/, '\n');
    if (!raw.startsWith('INVITE ')) continue;
    const [head] = raw.split(/\r?\n\r?\n/, 1);
    const lines = (head ?? '').split(/\r?\n/);
    const requestUri = (lines[0] ?? '').split(' ')[1] ?? '';
    const header = (...names: string[]): string | undefined => {
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0 && names.includes(line.slice(0, i).trim().toLowerCase())) return line.slice(i + 1).trim();
      }
      return undefined;
    };
    return {
      requestUri,
      from: header('from', 'f') ?? '',
      to: header('to', 't') ?? '',
      callId: header('call-id', 'i') ?? '',
      remotePartyId: header('remote-party-id'),
      pAssertedIdentity: header('p-asserted-identity'),
      raw,
    };
  }
  return undefined;
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `p`, or a rejection with `message` once `ms` have passed; the timer is cleared either way. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(message)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
