-- 033: one number's trace reads its calls and the audit entries naming it without a scan; the quarantined numbers are found without one too.
ALTER TABLE cdrs ADD KEY ix_cdrs_tenant_x_started (tenant_id, x, started_at);

ALTER TABLE audit_log ADD KEY ix_audit_tenant_target (tenant_id, target, action);

-- the routing path holds the (few) quarantined numbers in memory, re-read every few seconds
ALTER TABLE pool_numbers ADD KEY ix_pool_state (state, x);
