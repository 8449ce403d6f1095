import { ConfigError, loadConfig } from '../../src/config';

const base = { ESL_PASSWORD: 'x' };

describe('webhook configuration', () => {
  it('defaults to a 5 s timeout, minute-long retry units, a 30-day delivery log and 5 deliveries per tenant at once', () => {
    expect(loadConfig(base).webhooks).toEqual({ timeoutMs: 5000, retryUnitMs: 60_000, allowPrivateUrls: false, logRetentionDays: 30, tenantConcurrency: 5 });
    expect(
      loadConfig({ ...base, WEBHOOK_TIMEOUT_MS: '2500', WEBHOOK_RETRY_UNIT_MS: '20', WEBHOOK_LOG_RETENTION_DAYS: '7', WEBHOOK_TENANT_CONCURRENCY: '2' }).webhooks,
    ).toEqual({
      timeoutMs: 2500,
      retryUnitMs: 20,
      allowPrivateUrls: false,
      logRetentionDays: 7,
      tenantConcurrency: 2,
    });
  });

  it.each([
    ['WEBHOOK_TIMEOUT_MS', 'soon'],
    ['WEBHOOK_TIMEOUT_MS', '10'],
    ['WEBHOOK_RETRY_UNIT_MS', '0'],
    ['WEBHOOK_RETRY_UNIT_MS', '1.5'],
    ['WEBHOOK_LOG_RETENTION_DAYS', '0'],
    ['WEBHOOK_LOG_RETENTION_DAYS', 'soon'],
    ['WEBHOOK_TENANT_CONCURRENCY', '0'],
    ['WEBHOOK_TENANT_CONCURRENCY', '21'],
    ['WEBHOOK_TENANT_CONCURRENCY', 'many'],
  ])('a bad %s (%s) stops the start with the variable named', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(name);
  });
});
