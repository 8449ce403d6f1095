-- 006: abuse flags (SPEC §7 "用中监控"): a real number that reached many distinct parties in a short
-- time. A signal for the tenant, never a refusal. The real number is not stored: only a per-tenant
-- hash (to find a number's flags) and its masked form (to show).

CREATE TABLE abuse_flags (
  id              BIGINT       NOT NULL AUTO_INCREMENT,
  tenant_id       VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind            VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- sha256(tenant_id|number), first 32 hex digits
  number_hash     CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  number_masked   VARCHAR(32)  NOT NULL,
  distinct_count  INT          NOT NULL,
  window_seconds  INT          NOT NULL,
  created_at      DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_abuse_flags_tenant (tenant_id, created_at, id),
  KEY ix_abuse_flags_number (tenant_id, number_hash, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
