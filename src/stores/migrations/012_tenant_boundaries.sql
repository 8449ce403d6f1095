-- 012: what a tenant may present is the operator's to give (SPEC §4, §7).
-- Pass-through display shows A's real number to B: off unless the operator turns it on for a
-- tenant (existing tenants keep the setting they had). Pools belong to the operator, who assigns
-- numbers to tenants up to a quota per tenant.
ALTER TABLE tenants ALTER passthrough_allowed SET DEFAULT FALSE;

ALTER TABLE tenants ADD COLUMN pool_quota INT NOT NULL DEFAULT 10000 AFTER default_x;

UPDATE tenants t SET pool_quota = GREATEST(10000, (SELECT COUNT(*) FROM pool_numbers p WHERE p.tenant_id = t.id));
