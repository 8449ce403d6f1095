#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { CdrRecord } from '../domain/call';
import { AppError } from '../domain/errors';
import { maskPhone, maskPhonesInText, parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import { auditDetails } from '../domain/audit-details';
import { blockNumbers } from '../domain/pool';
import { AbuseDisposal, QuarantinedNumbers } from '../abuse/disposal';
import { AbuseFlagStore } from '../abuse/flag-store';
import { NumberTraceReader } from '../abuse/number-trace';
import { resolveLimits, TenantLimitsStore, validateSettingsChange } from '../abuse/tenant-limits';
import { abuseConfig, isSwitchName } from '../config';
import { SwitchStore, type SwitchAdminState } from '../stores/switch-store';
import { AgentTokenStore } from '../stores/agent-tokens';
import { AuditStore } from '../stores/audit-store';
import { BindingService, type PoolNumberState } from '../bindings/binding-service';
import { CdrStore } from '../stores/cdr-store';
import { MESSAGE_TRANSPORTS, type MessageRecord } from '../domain/message';
import { MessageStore } from '../messages/message-store';
import { MediaCatalogue } from '../stores/media-catalogue';
import { migrate } from '../stores/migrate';
import { createMysqlPool, ensureDatabase, type Pool } from '../stores/mysql';
import { TenantStore } from '../stores/tenant-store';

/**
 * numguard admin CLI: one executable, subcommands, `--help` everywhere. Talks to MySQL directly
 * (MYSQL_URL), so it works while the controller is down. Every change is written to the audit
 * log as `cli:<os user>` with a fresh request id per invocation. Output is one JSON object per
 * line (CSV for `cdr export`), so it pipes into jq.
 */

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  name: { type: 'string' },
  'default-x': { type: 'string' },
  'allow-passthrough': { type: 'boolean' },
  'no-passthrough': { type: 'boolean' },
  'end-warning': { type: 'boolean' },
  'no-end-warning': { type: 'boolean' },
  'pool-quota': { type: 'string' },
  'max-attempts': { type: 'string' },
  tenant: { type: 'string' },
  key: { type: 'string' },
  id: { type: 'string' },
  number: { type: 'string' },
  x: { type: 'string' },
  state: { type: 'string' },
  area: { type: 'string' },
  block: { type: 'string' },
  file: { type: 'string' },
  'allow-legacy': { type: 'boolean' },
  from: { type: 'string' },
  to: { type: 'string' },
  out: { type: 'string' },
  mask: { type: 'boolean' },
  action: { type: 'string' },
  limit: { type: 'string' },
  platform: { type: 'boolean' },
  'expires-days': { type: 'string' },
  sound: { type: 'string' },
  tone: { type: 'string' },
  description: { type: 'string' },
  transport: { type: 'string' },
  'store-body': { type: 'boolean' },
  'no-store-body': { type: 'boolean' },
  'body-retention-days': { type: 'string' },
  set: { type: 'string', multiple: true },
  active: { type: 'boolean' },
  cursor: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
} as const;

type Flag = keyof typeof OPTIONS;
type Values = Partial<Record<Flag, string | boolean | string[]>>;

interface Context {
  readonly pool: Pool;
  readonly env: NodeJS.ProcessEnv;
  /** Who runs the CLI, as the audit log names it. */
  readonly actor: string;
  readonly values: Values;
  readonly out: (line: string) => void;
  /** Records a change in the audit log as this CLI user. */
  audit(tenantId: string | null, action: string, target: string | null, details?: Record<string, unknown>): Promise<void>;
}

interface Command {
  readonly usage: string;
  readonly summary: string;
  run(ctx: Context): Promise<void>;
}

export class UsageError extends Error {}
/** The command could not be carried out (exit 1); the message names the flag involved. */
export class CliFailure extends Error {}

/** Stores name the field of a refused value; the CLI names the flag it came from. */
const FLAG_OF_FIELD: Record<string, string> = { agentNumber: 'number', defaultX: 'default-x', source: 'sound or --tone' };

function str(values: Values, flag: Flag): string | undefined {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
}

function need(values: Values, flag: Flag): string {
  const v = str(values, flag);
  if (!v) throw new UsageError(`--${flag} is required`);
  return v;
}

function timeFlag(values: Values, flag: Flag): number | undefined {
  const v = str(values, flag);
  if (v === undefined) return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag} must be an ISO time (2026-11-24T00:00:00Z) or epoch milliseconds`);
  return ms;
}

function intFlag(values: Values, flag: Flag, min: number, max: number): number | undefined {
  const v = str(values, flag);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}`);
  return n;
}

async function tenantOf(ctx: Context): Promise<string> {
  const id = need(ctx.values, 'tenant');
  if (!(await new TenantStore(ctx.pool).get(id))) throw new UsageError(`--tenant: no tenant ${id}`);
  return id;
}

const json = (ctx: Context, value: unknown): void => ctx.out(JSON.stringify(value));

function switchName(values: Values): string {
  const name = need(values, 'name');
  if (!isSwitchName(name)) throw new UsageError('--name: letters, digits, _ . - (at most 32)');
  return name;
}

/** How old a controller's report of a switch may be to count in `switch list`. */
const SWITCH_HEALTH_MAX_AGE_MS = 60_000;

async function setSwitchState(ctx: Context, state: SwitchAdminState): Promise<void> {
  const name = switchName(ctx.values);
  await new SwitchStore(ctx.pool).setState(name, state);
  await ctx.audit(null, state === 'draining' ? 'switch.drain' : 'switch.resume', name);
  json(ctx, { name, state });
}

/** A file stream that is open (so a bad path is a clear error naming --out, not a crash later). */
async function openForWriting(file: string): Promise<WriteStream> {
  const stream = createWriteStream(file);
  try {
    await once(stream, 'open');
  } catch (failure) {
    throw new CliFailure(`--out: cannot write ${file} (${(failure as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // A later write error (disk full) surfaces where the export waits: at 'drain' or at end().
  stream.on('error', () => undefined);
  return stream;
}

async function readTextFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (failure) {
    throw new CliFailure(`--file: cannot read ${file} (${(failure as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

const CDR_COLUMNS: ReadonlyArray<keyof CdrRecord> = [
  'callId', 'kind', 'bindingId', 'x', 'a', 'b', 'startedAt', 'aRingAt', 'aAnswerAt', 'bRingAt', 'bAnswerAt', 'endedAt',
  'talkSeconds', 'result', 'hangupCause', 'hangupSide', 'recordingRef', 'userData',
];
const TIME_COLUMNS = new Set<keyof CdrRecord>(['startedAt', 'aRingAt', 'aAnswerAt', 'bRingAt', 'bAnswerAt', 'endedAt']);

/**
 * RFC 4180: quote a field holding a comma, quote, CR or LF; double inner quotes. And no formulas
 * (OWASP CSV injection): a text cell a spreadsheet would evaluate (starting with = + - @, tab or
 * CR; userData is the tenant's own text) gets a leading '. Numbers (JSON numbers) are never
 * formulas, and neither is a number in a phone column: `+` and digits (a +E.164 A or B), or its
 * masked form (`+442*****0958`), stays as it is — nothing but arithmetic could come of it.
 */
export function csvField(value: unknown): string {
  let s =
    value === null || value === undefined ? '' : typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s) && !/^\+[0-9*]{1,20}$/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function cdrRow(c: CdrRecord, mask: boolean): string {
  return CDR_COLUMNS.map((k) => {
    const v = c[k];
    if (TIME_COLUMNS.has(k)) return csvField(v === null ? '' : new Date(v).toISOString());
    if (mask && (k === 'a' || k === 'b') && typeof v === 'string' && v) return csvField(maskPhone(v));
    return csvField(v);
  }).join(',');
}

const MESSAGE_COLUMNS: ReadonlyArray<keyof MessageRecord> = [
  'id', 'bindingId', 'x', 'direction', 'senderMasked', 'recipientMasked', 'transport', 'parts', 'length', 'status', 'refusal', 'failure',
  'receivedAt', 'forwardedAt', 'deliveredAt', 'failedAt',
];
const MESSAGE_TIME_COLUMNS = new Set<keyof MessageRecord>(['receivedAt', 'forwardedAt', 'deliveredAt', 'failedAt']);

function messageRow(m: MessageRecord): string {
  return MESSAGE_COLUMNS.map((k) => {
    const v = m[k];
    return csvField(MESSAGE_TIME_COLUMNS.has(k) && typeof v === 'number' ? new Date(v).toISOString() : v);
  }).join(',');
}

/** Writes a CSV export page by page, to --out (then says how many rows) or to stdout. */
async function exportCsv(ctx: Context, header: string, page: (cursor: string | undefined) => Promise<{ rows: string[]; nextCursor: string | null }>): Promise<void> {
  const file = str(ctx.values, 'out');
  const stream = file ? await openForWriting(file) : null;
  const write = async (lines: string[]): Promise<void> => {
    if (!stream) {
      for (const line of lines) ctx.out(line);
      return;
    }
    if (!stream.write(lines.map((line) => `${line}\r\n`).join(''))) await once(stream, 'drain');
  };
  await write([header]);
  let rows = 0;
  for (let cursor: string | undefined; ; ) {
    const next = await page(cursor);
    await write(next.rows);
    rows += next.rows.length;
    if (!next.nextCursor) break;
    cursor = next.nextCursor;
  }
  if (stream) {
    await new Promise<void>((resolve, reject) => stream.end((failure?: Error | null) => (failure ? reject(failure) : resolve())));
    json(ctx, { file, rows });
  }
}

const COMMANDS: Record<string, Command> = {
  migrate: {
    usage: 'migrate',
    summary: 'apply database migrations',
    async run(ctx) {
      const applied = await migrate(ctx.pool);
      ctx.out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    },
  },
  'tenant create': {
    usage: 'tenant create --name NAME [--default-x X] [--allow-passthrough] [--pool-quota N] [--max-attempts N]',
    summary: 'create a tenant (pass-through display off unless --allow-passthrough; pool quota 10000 unless given)',
    async run(ctx) {
      const maxAttempts = intFlag(ctx.values, 'max-attempts', 1, 10);
      const defaultX = str(ctx.values, 'default-x');
      const t = await new TenantStore(ctx.pool).create({
        name: need(ctx.values, 'name'),
        defaultX: defaultX ? parsePrivacyNumber(defaultX, 'default-x', true) : null,
        passthroughAllowed: Boolean(ctx.values['allow-passthrough']),
        poolQuota: intFlag(ctx.values, 'pool-quota', 0, 10_000_000),
        maxAttempts,
      });
      await ctx.audit(t.id, 'tenant.create', t.id, { name: t.name, passthroughAllowed: t.passthroughAllowed, poolQuota: t.poolQuota });
      json(ctx, { id: t.id, name: t.name, defaultX: t.defaultX, passthroughAllowed: t.passthroughAllowed, poolQuota: t.poolQuota, maxAttempts: t.maxAttempts });
    },
  },
  'tenant set': {
    usage: 'tenant set --tenant ID [--pool-quota N] [--allow-passthrough | --no-passthrough] [--end-warning | --no-end-warning] [--default-x X]',
    summary: "change a tenant's pool quota, pass-through permission, click-to-dial end warning or default X",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      if (ctx.values['allow-passthrough'] && ctx.values['no-passthrough']) throw new UsageError('give at most one of --allow-passthrough and --no-passthrough');
      if (ctx.values['end-warning'] && ctx.values['no-end-warning']) throw new UsageError('give at most one of --end-warning and --no-end-warning');
      const defaultX = str(ctx.values, 'default-x');
      const patch = {
        ...(str(ctx.values, 'pool-quota') !== undefined ? { poolQuota: intFlag(ctx.values, 'pool-quota', 0, 10_000_000) } : {}),
        ...(ctx.values['allow-passthrough'] ? { passthroughAllowed: true } : ctx.values['no-passthrough'] ? { passthroughAllowed: false } : {}),
        ...(ctx.values['end-warning'] ? { clickToDialEndWarning: true } : ctx.values['no-end-warning'] ? { clickToDialEndWarning: false } : {}),
        ...(defaultX !== undefined ? { defaultX: parsePrivacyNumber(defaultX, 'default-x', true) } : {}),
      };
      if (Object.keys(patch).length === 0) throw new UsageError('give --pool-quota, --allow-passthrough, --no-passthrough, --end-warning, --no-end-warning or --default-x');
      const t = await new TenantStore(ctx.pool).update(tenantId, patch);
      await ctx.audit(tenantId, 'tenant.update', tenantId, patch);
      json(ctx, { id: t.id, name: t.name, defaultX: t.defaultX, passthroughAllowed: t.passthroughAllowed, clickToDialEndWarning: t.clickToDialEndWarning, poolQuota: t.poolQuota });
    },
  },
  'tenant list': {
    usage: 'tenant list',
    summary: 'list tenants',
    async run(ctx) {
      for (const t of await new TenantStore(ctx.pool).list()) json(ctx, { id: t.id, name: t.name, status: t.status, defaultX: t.defaultX });
    },
  },
  'tenant show': {
    usage: 'tenant show --tenant ID',
    summary: 'one tenant with its settings (no secrets)',
    async run(ctx) {
      const t = await new TenantStore(ctx.pool).get(await tenantOf(ctx));
      if (!t) throw new CliFailure('--tenant: the tenant is gone');
      json(ctx, { ...t, webhookSecret: undefined });
    },
  },
  'key create': {
    usage: 'key create --tenant ID [--name LABEL]',
    summary: 'create an API key (printed once)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const k = await new TenantStore(ctx.pool).createApiKey(tenantId, str(ctx.values, 'name') ?? 'default');
      await ctx.audit(tenantId, 'key.create', k.id);
      json(ctx, k);
    },
  },
  'key list': {
    usage: 'key list --tenant ID',
    summary: "a tenant's API keys (never the keys themselves)",
    async run(ctx) {
      for (const k of await new TenantStore(ctx.pool).listApiKeys(await tenantOf(ctx))) json(ctx, k);
    },
  },
  'key revoke': {
    usage: 'key revoke --tenant ID --key KEY_ID',
    summary: 'revoke an API key (refused everywhere within 5 s)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const keyId = need(ctx.values, 'key');
      await new TenantStore(ctx.pool).revokeApiKey(tenantId, keyId);
      await ctx.audit(tenantId, 'key.revoke', keyId);
      json(ctx, { revoked: keyId });
    },
  },
  'agent-token create': {
    usage: 'agent-token create --tenant ID --name NAME --number AGENT_PHONE [--expires-days N]',
    summary: 'create an agent-console sign-in token (printed once); it signs no one in after --expires-days (1-3650, default 90)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const days = intFlag(ctx.values, 'expires-days', 1, 3650) ?? 90;
      const made = await new AgentTokenStore(ctx.pool).create(tenantId, {
        name: need(ctx.values, 'name'),
        agentNumber: need(ctx.values, 'number'),
        expiresAt: Date.now() + days * 86_400_000,
      });
      await ctx.audit(tenantId, 'agent_token.create', made.id, { name: str(ctx.values, 'name'), expiresAt: made.expiresAt });
      json(ctx, made);
    },
  },
  'agent-token list': {
    usage: 'agent-token list --tenant ID',
    summary: "a tenant's agent tokens (agent numbers masked)",
    async run(ctx) {
      for (const t of await new AgentTokenStore(ctx.pool).list(await tenantOf(ctx))) json(ctx, { ...t, agentNumber: maskPhone(t.agentNumber) });
    },
  },
  'agent-token revoke': {
    usage: 'agent-token revoke --tenant ID --id TOKEN_ID',
    summary: 'revoke an agent token and end its console sessions (at once in MySQL, everywhere within seconds)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const id = need(ctx.values, 'id');
      await new AgentTokenStore(ctx.pool).revoke(tenantId, id);
      await ctx.audit(tenantId, 'agent_token.revoke', id);
      json(ctx, { revoked: id });
    },
  },
  'pool import': {
    usage: 'pool import --tenant ID --area CODE (--block 700XXXXXXXX | --file numbers.txt) [--allow-legacy]',
    summary: "assign numbers to a tenant's pool: a whole 11-digit 700 block (10,000 numbers) or a file, one per line (refused past the tenant's quota or for a number another tenant holds)",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const area = need(ctx.values, 'area');
      const block = str(ctx.values, 'block');
      const file = str(ctx.values, 'file');
      if ((block === undefined) === (file === undefined)) throw new UsageError('give exactly one of --block and --file');
      const numbers = block !== undefined
        ? blockNumbers(block, area)
        : (await readTextFile(need(ctx.values, 'file'))).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((x) => ({ x, area }));
      const imported = await new BindingService(ctx.pool).importNumbers(tenantId, numbers, { allowLegacy: Boolean(ctx.values['allow-legacy']) });
      await ctx.audit(tenantId, 'pool.import', block ?? null, { area, offered: numbers.length, imported });
      json(ctx, { offered: numbers.length, imported });
    },
  },
  'pool stats': {
    usage: 'pool stats --tenant ID',
    summary: 'per area: numbers, enabled, disabled, quarantined, free, in use, bindings',
    async run(ctx) {
      for (const a of await new BindingService(ctx.pool).poolStats(await tenantOf(ctx))) json(ctx, a);
    },
  },
  'pool state': {
    usage: 'pool state --tenant ID --x NUMBER --state enabled|disabled|quarantined',
    summary: "change a number's state (a quarantined number routes no call; a disabled one's live bindings keep routing until they end)",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const state = need(ctx.values, 'state');
      if (!['enabled', 'disabled', 'quarantined'].includes(state)) throw new UsageError('--state must be enabled, disabled or quarantined');
      const n = await new BindingService(ctx.pool).setNumberState(tenantId, need(ctx.values, 'x'), state as PoolNumberState);
      await ctx.audit(tenantId, 'pool.number_state', n.x, { state });
      json(ctx, n);
    },
  },
  'media add': {
    usage: 'media add --id ID (--sound PATH | --tone SPEC) [--description TEXT]',
    summary: 'register a prompt or announcement: a file relative to the switch\'s sounds directory, or a TGML tone',
    async run(ctx) {
      const sound = str(ctx.values, 'sound');
      const tone = str(ctx.values, 'tone');
      const source = sound ?? tone;
      if (source === undefined || (sound !== undefined && tone !== undefined)) throw new UsageError('give exactly one of --sound and --tone');
      const entry = await new MediaCatalogue(ctx.pool).add({
        id: need(ctx.values, 'id'),
        kind: sound !== undefined ? 'file' : 'tone',
        source,
        description: str(ctx.values, 'description') ?? '',
      });
      await ctx.audit(null, 'media.add', entry.id, { kind: entry.kind, source: entry.source });
      json(ctx, entry);
    },
  },
  'media list': {
    usage: 'media list',
    summary: 'the media catalogue: what tenants may name as an announcement',
    async run(ctx) {
      for (const e of await new MediaCatalogue(ctx.pool).list()) json(ctx, e);
    },
  },
  'media remove': {
    usage: 'media remove --id ID',
    summary: 'remove a catalogue entry (refused while an active binding announces it)',
    async run(ctx) {
      const id = need(ctx.values, 'id');
      await new MediaCatalogue(ctx.pool).remove(id);
      await ctx.audit(null, 'media.remove', id);
      json(ctx, { removed: id });
    },
  },
  'binding lookup': {
    usage: 'binding lookup --tenant ID (--id BINDING_ID | --number PHONE) [--limit N]',
    summary: 'a binding by id, or the bindings of a number (as A or B), newest first',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const registry = new BindingService(ctx.pool);
      const id = str(ctx.values, 'id');
      const number = str(ctx.values, 'number');
      if ((id === undefined) === (number === undefined)) throw new UsageError('give exactly one of --id and --number');
      if (id !== undefined) {
        const b = await registry.get(tenantId, id);
        if (!b) throw new UsageError(`--id: no binding ${id} in this tenant`);
        json(ctx, b);
        return;
      }
      const page = await registry.listPage(tenantId, { number, limit: intFlag(ctx.values, 'limit', 1, 500) ?? 50 });
      for (const b of page.items) json(ctx, b);
    },
  },
  'cdr export': {
    usage: 'cdr export --tenant ID [--from TIME] [--to TIME] [--out FILE.csv] [--mask]',
    summary: "a tenant's call records as CSV (RFC 4180), newest first; --mask masks A and B",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const from = timeFlag(ctx.values, 'from');
      const to = timeFlag(ctx.values, 'to');
      const mask = Boolean(ctx.values.mask);
      const cdrs = new CdrStore(ctx.pool);
      await exportCsv(ctx, CDR_COLUMNS.join(','), async (cursor) => {
        const page = await cdrs.list(tenantId, { from, to, limit: 500, cursor });
        return { rows: page.items.map((c) => cdrRow(c, mask)), nextCursor: page.nextCursor };
      });
    },
  },
  'message export': {
    usage: 'message export --tenant ID [--from TIME] [--to TIME] [--out FILE.csv]',
    summary: "a tenant's text-message records as CSV, newest first (parties masked as stored; no bodies)",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const from = timeFlag(ctx.values, 'from');
      const to = timeFlag(ctx.values, 'to');
      const messages = new MessageStore(ctx.pool);
      await exportCsv(ctx, MESSAGE_COLUMNS.join(','), async (cursor) => {
        const page = await messages.list(tenantId, { from, to, limit: 500, cursor });
        return { rows: page.items.map(messageRow), nextCursor: page.nextCursor };
      });
    },
  },
  'message settings': {
    usage: 'message settings --tenant ID [--transport sip|smpp|default] [--store-body | --no-store-body] [--body-retention-days N]',
    summary: "a tenant's carrier path for text messages (default: MESSAGE_TRANSPORT) and whether bodies are kept, for how many days",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      if (ctx.values['store-body'] && ctx.values['no-store-body']) throw new UsageError('give at most one of --store-body and --no-store-body');
      const transport = str(ctx.values, 'transport');
      if (transport !== undefined && transport !== 'default' && !MESSAGE_TRANSPORTS.some((t) => t === transport)) {
        throw new UsageError(`--transport must be ${MESSAGE_TRANSPORTS.join(', ')} or default`);
      }
      const patch = {
        ...(transport === undefined ? {} : { transport: MESSAGE_TRANSPORTS.find((t) => t === transport) ?? null }),
        ...(ctx.values['store-body'] ? { storeBody: true } : ctx.values['no-store-body'] ? { storeBody: false } : {}),
        ...(str(ctx.values, 'body-retention-days') === undefined ? {} : { bodyRetentionDays: intFlag(ctx.values, 'body-retention-days', 1, 3650) }),
      };
      const settings = await new MessageStore(ctx.pool).putSettings(tenantId, patch);
      await ctx.audit(tenantId, 'message.settings', tenantId, { ...settings });
      json(ctx, settings);
    },
  },
  'blacklist add': {
    usage: 'blacklist add (--tenant ID | --platform) --number PHONE',
    summary: 'never bind or call this number (for one tenant, or the whole platform)',
    async run(ctx) {
      const tenantId = ctx.values.platform ? null : await tenantOf(ctx);
      const number = parseRealNumber(need(ctx.values, 'number'), 'number');
      await new BindingService(ctx.pool).blacklistAdd(tenantId, number);
      await ctx.audit(tenantId, 'blacklist.add', maskPhone(number));
      json(ctx, { blacklisted: maskPhone(number) });
    },
  },
  'blacklist remove': {
    usage: 'blacklist remove (--tenant ID | --platform) --number PHONE',
    summary: 'take a number off the blacklist',
    async run(ctx) {
      const tenantId = ctx.values.platform ? null : await tenantOf(ctx);
      const number = parseRealNumber(need(ctx.values, 'number'), 'number');
      await new BindingService(ctx.pool).blacklistRemove(tenantId, number);
      await ctx.audit(tenantId, 'blacklist.remove', maskPhone(number));
      json(ctx, { removed: maskPhone(number) });
    },
  },
  'blacklist list': {
    usage: 'blacklist list (--tenant ID | --platform)',
    summary: 'the blacklisted numbers (this is an operator tool: numbers are shown in full)',
    async run(ctx) {
      const tenantId = ctx.values.platform ? null : await tenantOf(ctx);
      for (const number of await new BindingService(ctx.pool).blacklistList(tenantId)) json(ctx, { number });
    },
  },
  'abuse limits': {
    usage: 'abuse limits --tenant ID',
    summary: "a tenant's abuse limits, anomaly thresholds and disposal policy: effective, its own, and the platform's",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const platform = abuseConfig(ctx.env);
      const own = await new TenantLimitsStore(ctx.pool).get(tenantId);
      json(ctx, { effective: resolveLimits(platform, own), own: own ?? {}, platform });
    },
  },
  'abuse set': {
    usage: 'abuse set --tenant ID --set NAME=VALUE [--set ...]   (NAME: callsPerCallerPerMinute, pairBindingsPerHour, …, or disposal.KIND=warn|quarantine|block; VALUE null: the platform\'s)',
    summary: "set a tenant's own abuse limits and disposal policy (the operator may loosen a limit past the platform's); the controllers apply it within 5 s",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const pairs = ctx.values.set;
      if (!Array.isArray(pairs) || pairs.length === 0) throw new UsageError('--set is required');
      const change: Record<string, unknown> = {};
      const store = new TenantLimitsStore(ctx.pool);
      const disposal: Record<string, string> = { ...((await store.get(tenantId))?.disposal ?? {}) };
      let disposalChanged = false;
      for (const pair of pairs) {
        const m = /^([A-Za-z]+)(?:\.([a-z_]+))?=(.+)$/.exec(pair);
        if (!m?.[1] || m[3] === undefined) throw new UsageError(`--set ${pair}: expected NAME=VALUE`);
        if (m[1] === 'disposal') {
          if (!m[2]) throw new UsageError(`--set ${pair}: expected disposal.KIND=warn|quarantine|block`);
          disposal[m[2]] = m[3];
          disposalChanged = true;
        } else {
          change[m[1]] = m[3] === 'null' ? null : /^\d+$/.test(m[3]) ? Number(m[3]) : m[3];
        }
      }
      if (disposalChanged) change.disposal = disposal;
      let valid;
      try {
        valid = validateSettingsChange(change, abuseConfig(ctx.env), false);
      } catch (refused) {
        if (refused instanceof AppError && refused.field) throw new UsageError(`--set ${refused.field}: ${refused.message}`);
        throw refused;
      }
      const own = await store.update(tenantId, valid);
      await ctx.audit(tenantId, 'abuse.limits', null, { body: change });
      json(ctx, { own });
    },
  },
  'abuse flags': {
    usage: 'abuse flags --tenant ID [--limit N]',
    summary: 'the abuse flags of a tenant, newest first, with their evidence and action (numbers masked)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      for (const f of await new AbuseFlagStore(ctx.pool).list(tenantId, { limit: intFlag(ctx.values, 'limit', 1, 500) ?? 50 })) {
        json(ctx, { ...f, numberHash: undefined });
      }
    },
  },
  'abuse actions': {
    usage: 'abuse actions --tenant ID [--active] [--limit N]',
    summary: 'quarantines and blocks the disposal policy took, newest first (--active: those in force)',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const disposal = new AbuseDisposal(ctx.pool, new QuarantinedNumbers(ctx.pool), () => undefined);
      const page = await disposal.page(tenantId, { active: Boolean(ctx.values.active), limit: intFlag(ctx.values, 'limit', 1, 500) ?? 50 });
      for (const a of page.items) json(ctx, a);
    },
  },
  'abuse lift': {
    usage: 'abuse lift --tenant ID --id ACTION_ID',
    summary: 'lift a quarantine (the X is enabled again) or a block (the number leaves the blacklist); controllers apply it within 5 s',
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const id = intFlag(ctx.values, 'id', 1, Number.MAX_SAFE_INTEGER);
      if (id === undefined) throw new UsageError('--id is required');
      const lifted = await new AbuseDisposal(ctx.pool, new QuarantinedNumbers(ctx.pool), () => undefined).lift(tenantId, id, ctx.actor);
      await ctx.audit(tenantId, 'abuse.lift', String(id), { action: lifted.action, x: lifted.x, number: lifted.numberMasked });
      json(ctx, lifted);
    },
  },
  'pool trace': {
    usage: 'pool trace --tenant ID --x NUMBER [--limit N] [--cursor C]',
    summary: "one number's life, newest first: imported, state changes, bindings (who asked), calls and refusals, flags, quarantines (numbers masked)",
    async run(ctx) {
      const tenantId = await tenantOf(ctx);
      const x = parsePrivacyNumber(need(ctx.values, 'x'), 'x', true);
      const trace = await new NumberTraceReader(ctx.pool).trace(tenantId, x, { limit: intFlag(ctx.values, 'limit', 1, 500) ?? 100, cursor: str(ctx.values, 'cursor') });
      json(ctx, { number: trace.number });
      for (const e of trace.items) json(ctx, e);
      json(ctx, { nextCursor: trace.nextCursor });
    },
  },
  'switch add': {
    usage: 'switch add --name NAME --host HOST [--port 8021]',
    summary: 'add a switch to the fleet (or change its address); every controller connects to it within SWITCHES_REFRESH_SECONDS',
    async run(ctx) {
      const name = switchName(ctx.values);
      const host = need(ctx.values, 'host');
      if (!/^[A-Za-z0-9.:_-]{1,255}$/.test(host)) throw new UsageError('--host: a host name or an IP address');
      const port = intFlag(ctx.values, 'port', 1, 65535) ?? 8021;
      await new SwitchStore(ctx.pool).add(name, host, port);
      await ctx.audit(null, 'switch.add', name, { host, port });
      json(ctx, { name, host, port });
    },
  },
  'switch drain': {
    usage: 'switch drain --name NAME',
    summary: 'the switch takes no new calls; its calls finish there (also a switch from SWITCHES)',
    run: (ctx) => setSwitchState(ctx, 'draining'),
  },
  'switch resume': {
    usage: 'switch resume --name NAME',
    summary: 'a drained switch takes new calls again',
    run: (ctx) => setSwitchState(ctx, 'active'),
  },
  'switch remove': {
    usage: 'switch remove --name NAME',
    summary: 'take a switch added with `switch add` out of the fleet (drain it first: calls still on it are settled failed)',
    async run(ctx) {
      const name = switchName(ctx.values);
      if (!(await new SwitchStore(ctx.pool).remove(name))) throw new CliFailure(`--name: no switch ${name} in the switches table`);
      await ctx.audit(null, 'switch.remove', name);
      json(ctx, { name, removed: true });
    },
  },
  'switch list': {
    usage: 'switch list',
    summary: 'every switch: address, state (active, draining) and what each controller saw of it in the last minute',
    async run(ctx) {
      const store = new SwitchStore(ctx.pool);
      const [rows, health] = await Promise.all([store.list(), store.health(SWITCH_HEALTH_MAX_AGE_MS)]);
      const names = [...new Set([...rows.map((r) => r.name), ...health.map((h) => h.name)])].sort();
      for (const name of names) {
        const row = rows.find((r) => r.name === name);
        const seen = health.filter((h) => h.name === name);
        const address = row?.host ? `${row.host}:${String(row.port ?? 8021)}` : (seen[0]?.address ?? null);
        json(ctx, {
          name,
          address,
          state: row?.state ?? seen[0]?.state ?? 'active',
          source: row?.host ? 'table' : 'SWITCHES',
          up: seen.some((h) => h.connected),
          controllers: seen.map((h) => ({
            controller: h.reportedBy,
            connected: h.connected,
            lost: h.lost,
            sessions: h.sessions,
            maxSessions: h.maxSessions,
            sessionsPerSecond: h.sessionsPerSecond,
            idleCpu: h.idleCpu,
            calls: h.calls,
            at: new Date(h.reportedAt).toISOString(),
          })),
        });
      }
    },
  },
  'audit list': {
    usage: 'audit list (--tenant ID | --platform) [--action ACTION] [--limit N]',
    summary: 'the audit log, newest first (numbers masked)',
    async run(ctx) {
      const tenantId = ctx.values.platform ? null : await tenantOf(ctx);
      const page = await new AuditStore(ctx.pool).page(tenantId, { action: str(ctx.values, 'action'), limit: intFlag(ctx.values, 'limit', 1, 500) ?? 50 });
      for (const e of page.items) json(ctx, e);
    },
  },
};

const isGroup = (word: string | undefined): word is string =>
  word !== undefined && Object.keys(COMMANDS).some((n) => n === word || n.startsWith(`${word} `));

function usage(prefix = ''): string {
  const rows = Object.entries(COMMANDS)
    .filter(([name]) => !prefix || name === prefix || name.startsWith(`${prefix} `))
    .map(([, c]) => `  ${c.usage}\n      ${c.summary}`);
  return `usage: numguard <command> [flags]   (npm run cli -- <command> ...)\n${rows.join('\n')}\nenvironment: MYSQL_URL (default mysql://root@127.0.0.1:3306/numguard)`;
}

/**
 * Runs one CLI invocation; returns the exit code (0 ok, 64 usage, 65 bad data, 1 failed). Any other failure
 * is thrown (the executable prints its message, numbers masked, and exits 1). Results go to `out`,
 * errors and usage after an error to `err`, so `cdr export > file.csv` never holds an error.
 */
export async function runAdminCli(
  argv: string[],
  out: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  err: (line: string) => void = out,
): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS, strict: true }));
  } catch (parseError) {
    err(`${parseError instanceof Error ? parseError.message : String(parseError)}\n${usage(isGroup(argv[0]) ? argv[0] : '')}`);
    return 64;
  }
  const name = positionals.slice(0, 2).join(' ');
  const command = COMMANDS[name] ?? COMMANDS[positionals[0] ?? ''];
  if (values.help || !command) {
    const group = positionals[0] ?? '';
    if (!values.help && positionals.length > 0) err(`unknown command: ${positionals.join(' ')}`);
    (values.help ? out : err)(usage(isGroup(group) ? group : ''));
    return values.help ? 0 : 64;
  }
  const url = env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/numguard';
  await ensureDatabase(url);
  const pool = createMysqlPool(url, { connectionLimit: 4 });
  const requestId = randomUUID();
  const actor = `cli:${userInfo().username}`;
  const audit = new AuditStore(pool);
  try {
    if (command !== COMMANDS.migrate) await migrate(pool);
    await command.run({
      pool,
      env,
      actor,
      values,
      out,
      async audit(tenantId, action, target, details) {
        await audit.append({ tenantId, actor, action, target, requestId, details: details ? (auditDetails(details) as Record<string, unknown>) : null });
      },
    });
    return 0;
  } catch (failure) {
    if (failure instanceof UsageError) {
      err(`${failure.message}\n${usage(positionals[0])}`);
      return 64;
    }
    if (failure instanceof CliFailure) {
      err(failure.message);
      return 1;
    }
    if (failure instanceof AppError && failure.kind !== 'unavailable') {
      const flag = failure.field ? (FLAG_OF_FIELD[failure.field] ?? failure.field) : undefined;
      err(`${flag ? `invalid --${flag}: ` : ''}${failure.message} (${failure.code})`);
      return 65;
    }
    throw failure;
  } finally {
    await pool.end();
  }
}

if (require.main === module) {
  runAdminCli(
    process.argv.slice(2),
    (l) => process.stdout.write(`${l}\n`),
    process.env,
    (l) => process.stderr.write(`${l}\n`),
  ).then(
    (code) => process.exit(code),
    (failure: unknown) => {
      process.stderr.write(`error: ${maskPhonesInText(failure instanceof Error ? failure.message : String(failure))}\n`);
      process.exit(1);
    },
  );
}
