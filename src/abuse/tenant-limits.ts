import type { RowDataPacket } from 'mysql2/promise';
import type { AppConfig } from '../config';
import { ForbiddenError, ValidationError } from '../domain/errors';
import type { Pool } from '../stores/mysql';

/** The platform's abuse settings (config.ts), which a tenant's own settings override one by one. */
export type PlatformAbuseLimits = AppConfig['abuse'];

/** What the anomaly watch can flag. */
export const ANOMALY_KINDS = ['fanout', 'caller_burst', 'x_burst', 'short_calls', 'bulk_binding'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** What the disposal policy does about a flag of one kind. */
export const DISPOSALS = ['warn', 'quarantine', 'block'] as const;
export type Disposal = (typeof DISPOSALS)[number];

export type DisposalPolicy = Readonly<Partial<Record<AnomalyKind, Disposal>>>;

/**
 * The settings a tenant may have of its own. `stricter` says which way tightens the rule: a tenant
 * may only tighten its own (API); the operator (CLI) may set any value in range. For `lower`
 * settings 0 means "off", the loosest of all.
 */
const SETTINGS = {
  callsPerCallerPerMinute: { column: 'calls_per_caller_per_minute', min: 0, max: 100_000, stricter: 'lower' },
  bindingsPerNumberPerHour: { column: 'bindings_per_number_per_hour', min: 0, max: 100_000, stricter: 'lower' },
  pairBindingsPerHour: { column: 'pair_bindings_per_hour', min: 0, max: 100_000, stricter: 'lower' },
  fanoutDistinctParties: { column: 'fanout_distinct_parties', min: 1, max: 100_000, stricter: 'lower' },
  fanoutWindowSeconds: { column: 'fanout_window_seconds', min: 1, max: 86_400, stricter: 'higher' },
  callerBurstCalls: { column: 'caller_burst_calls', min: 0, max: 1_000_000, stricter: 'lower' },
  xBurstCalls: { column: 'x_burst_calls', min: 0, max: 1_000_000, stricter: 'lower' },
  burstWindowSeconds: { column: 'burst_window_seconds', min: 1, max: 86_400, stricter: 'higher' },
  shortCallSeconds: { column: 'short_call_seconds', min: 1, max: 3600, stricter: 'higher' },
  shortCallSharePercent: { column: 'short_call_share_percent', min: 1, max: 100, stricter: 'lower' },
  shortCallMinCalls: { column: 'short_call_min_calls', min: 0, max: 1_000_000, stricter: 'lower' },
  shortCallWindowSeconds: { column: 'short_call_window_seconds', min: 1, max: 86_400, stricter: 'higher' },
  bulkBindingFactor: { column: 'bulk_binding_factor', min: 1, max: 10_000, stricter: 'lower' },
  bulkBindingMinPerMinute: { column: 'bulk_binding_min_per_minute', min: 0, max: 10_000_000, stricter: 'lower' },
  blockSeconds: { column: 'block_seconds', min: 60, max: 31_536_000, stricter: 'higher' },
} as const satisfies Record<string, { column: string; min: number; max: number; stricter: 'lower' | 'higher' }>;

export type TenantSettingName = keyof typeof SETTINGS;
export const TENANT_SETTING_NAMES = Object.keys(SETTINGS) as TenantSettingName[];

/** A tenant's own settings: a number overrides the platform's, null (or absent) falls back to it. */
export type TenantAbuseSettings = Readonly<Partial<Record<TenantSettingName, number | null>>> & { readonly disposal?: DisposalPolicy | null };

/** What applies to a tenant now: every setting resolved, and the disposal of every kind. */
export type EffectiveLimits = Readonly<Record<TenantSettingName, number>> & {
  readonly tenantRequestsPerSecond: number;
  readonly bulkBindingBaselineMinutes: number;
  readonly disposal: Readonly<Record<AnomalyKind, Disposal>>;
};

export function resolveLimits(platform: PlatformAbuseLimits, own: TenantAbuseSettings | null): EffectiveLimits {
  const out: Record<string, unknown> = {
    tenantRequestsPerSecond: platform.tenantRequestsPerSecond,
    bulkBindingBaselineMinutes: platform.bulkBindingBaselineMinutes,
  };
  for (const name of TENANT_SETTING_NAMES) out[name] = own?.[name] ?? platform[name];
  out.disposal = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, own?.disposal?.[k] ?? 'warn']));
  return out as EffectiveLimits;
}

function looser(name: TenantSettingName, value: number, platform: number): boolean {
  const rule = SETTINGS[name];
  if (rule.stricter === 'lower') return platform !== 0 && (value === 0 || value > platform);
  return value < platform;
}

/**
 * Checks a change of settings (unknown names and bad values are 400 with the field). `byTenant`: the
 * tenant's own request may only tighten a setting against the platform's (403 operator_only, field
 * the setting); the operator may loosen it too.
 */
export function validateSettingsChange(change: Record<string, unknown>, platform: PlatformAbuseLimits, byTenant: boolean): TenantAbuseSettings {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(change)) {
    if (name === 'disposal') {
      out.disposal = validateDisposal(value);
      continue;
    }
    if (!(name in SETTINGS)) throw new ValidationError(name, `${name} is not an abuse setting`, 'unknown_field');
    const setting = name as TenantSettingName;
    if (value === null) {
      out[setting] = null;
      continue;
    }
    const { min, max } = SETTINGS[setting];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ValidationError(setting, `${setting} must be an integer from ${min} to ${max}, or null for the platform's`);
    }
    if (byTenant && looser(setting, value, platform[setting])) {
      throw new ForbiddenError('operator_only', `only the operator may set ${setting} looser than the platform's (${platform[setting]})`, setting);
    }
    out[setting] = value;
  }
  return out;
}

function validateDisposal(value: unknown): DisposalPolicy | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('disposal', 'disposal must map anomaly kinds to warn, quarantine or block');
  const out: Partial<Record<AnomalyKind, Disposal>> = {};
  for (const [kind, action] of Object.entries(value as Record<string, unknown>)) {
    if (!(ANOMALY_KINDS as readonly string[]).includes(kind)) throw new ValidationError('disposal', `disposal: ${kind} is not an anomaly kind (${ANOMALY_KINDS.join(', ')})`);
    if (!(DISPOSALS as readonly unknown[]).includes(action)) throw new ValidationError('disposal', `disposal.${kind} must be warn, quarantine or block`);
    out[kind as AnomalyKind] = action as Disposal;
  }
  return out;
}

/** The tenant_abuse_settings rows (migration 030). */
export class TenantLimitsStore {
  constructor(private readonly pool: Pool) {}

  async get(tenantId: string): Promise<TenantAbuseSettings | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM tenant_abuse_settings WHERE tenant_id = ?', [tenantId]);
    const r = rows[0];
    if (!r) return null;
    const out: Record<string, unknown> = {};
    for (const name of TENANT_SETTING_NAMES) {
      const v: unknown = r[SETTINGS[name].column];
      out[name] = v === null ? null : Number(v);
    }
    const disposal: unknown = r.disposal;
    out.disposal = disposal === null ? null : typeof disposal === 'string' ? (JSON.parse(disposal) as DisposalPolicy) : (disposal);
    return out;
  }

  /** Applies the settings present in `change` (null: back to the platform's); returns the tenant's settings after it. */
  async update(tenantId: string, change: TenantAbuseSettings): Promise<TenantAbuseSettings | null> {
    const columns: string[] = [];
    const values: unknown[] = [];
    for (const name of TENANT_SETTING_NAMES) {
      if (!(name in change)) continue;
      columns.push(SETTINGS[name].column);
      values.push(change[name] ?? null);
    }
    if ('disposal' in change) {
      columns.push('disposal');
      values.push(change.disposal ? JSON.stringify(change.disposal) : null);
    }
    if (columns.length > 0) {
      await this.pool.query(
        `INSERT INTO tenant_abuse_settings (tenant_id, ${columns.join(', ')}, updated_at) VALUES (?, ${columns.map(() => '?').join(', ')}, NOW(3))
         ON DUPLICATE KEY UPDATE ${columns.map((c) => `${c} = VALUES(${c})`).join(', ')}, updated_at = NOW(3)`,
        [tenantId, ...values],
      );
    }
    return this.get(tenantId);
  }
}

/**
 * The one place a tenant's effective limits are resolved: its own settings over the platform's,
 * cached for `ttlMs` (a change made through this instance applies at once, on others within ttlMs).
 * For the call paths, `forRouting` never waits on MySQL once a tenant's settings were read: a stale
 * answer is used while the refresh runs behind it.
 */
export class TenantLimits {
  private readonly cache = new Map<string, { limits: EffectiveLimits; until: number }>();
  private readonly loading = new Map<string, Promise<EffectiveLimits>>();
  private generation = 0;

  constructor(
    private readonly store: Pick<TenantLimitsStore, 'get'>,
    readonly platform: PlatformAbuseLimits,
    private readonly ttlMs: number = 5_000,
  ) {}

  async effective(tenantId: string, now: number = Date.now()): Promise<EffectiveLimits> {
    const hit = this.cache.get(tenantId);
    if (hit && hit.until > now) return hit.limits;
    return this.load(tenantId, now);
  }

  async forRouting(tenantId: string, now: number = Date.now()): Promise<EffectiveLimits> {
    const hit = this.cache.get(tenantId);
    if (!hit) return this.load(tenantId, now);
    if (hit.until <= now) void this.load(tenantId, now).catch(() => undefined);
    return hit.limits;
  }

  /** The pair limit the binding service applies to a new AXB binding (0: off). */
  async pairBindingsPerHour(tenantId: string): Promise<number> {
    return (await this.effective(tenantId)).pairBindingsPerHour;
  }

  invalidate(tenantId: string): void {
    this.generation++;
    this.cache.delete(tenantId);
    this.loading.delete(tenantId);
  }

  private load(tenantId: string, now: number): Promise<EffectiveLimits> {
    const inFlight = this.loading.get(tenantId);
    if (inFlight) return inFlight;
    const generation = this.generation;
    const load = this.store
      .get(tenantId)
      .then((own) => {
        const limits = resolveLimits(this.platform, own);
        if (generation === this.generation) {
          if (this.cache.size > 10_000) this.cache.clear();
          this.cache.set(tenantId, { limits, until: now + this.ttlMs });
        }
        return limits;
      })
      .finally(() => {
        if (this.loading.get(tenantId) === load) this.loading.delete(tenantId);
      });
    this.loading.set(tenantId, load);
    return load;
  }
}
