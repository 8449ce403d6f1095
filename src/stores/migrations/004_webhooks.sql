-- 004: webhooks (SPEC §6): one endpoint per tenant, and the log of every delivery attempt.
-- The secret is kept as given: it is the shared HMAC key the body is signed with.

CREATE TABLE webhook_endpoints (
  tenant_id   VARCHAR(36)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  url         VARCHAR(2048) NOT NULL,
  secret      VARCHAR(256)  NOT NULL,
  -- JSON array of event types; NULL = every type
  event_types TEXT          NULL,
  enabled     BOOLEAN       NOT NULL DEFAULT TRUE,
  created_at  DATETIME(3)   NOT NULL,
  updated_at  DATETIME(3)   NOT NULL,
  PRIMARY KEY (tenant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per attempt. `error` is short and has phone numbers masked.
CREATE TABLE webhook_deliveries (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id   VARCHAR(36)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  event_id    CHAR(36)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  event_type  VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  url         VARCHAR(2048) NOT NULL,
  attempt     INT           NOT NULL,
  status      ENUM('delivered','failed','gave_up') NOT NULL,
  http_status INT           NULL,
  error       VARCHAR(255)  NULL,
  duration_ms INT           NOT NULL,
  created_at  DATETIME(3)   NOT NULL,
  PRIMARY KEY (id),
  KEY ix_webhook_deliveries_tenant (tenant_id, created_at, id),
  KEY ix_webhook_deliveries_event (tenant_id, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
