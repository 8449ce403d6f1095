/** The tenant a request acts for, as authenticated (an API key, an agent's session), and who acted, for the audit log. */
export interface TenantContext {
  readonly tenantId: string;
  readonly actor: string;
}
