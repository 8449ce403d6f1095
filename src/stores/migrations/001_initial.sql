-- 001: tenants, API keys, calls, CDRs, bindings, audit log.
-- All times are DATETIME(3) in UTC (the app sets the session time zone to +00:00).
-- Ids and hashes are ASCII with binary collation: compact keys, exact comparison.

CREATE TABLE tenants (
  id                   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name                 VARCHAR(128) NOT NULL,
  status               ENUM('active','disabled') NOT NULL DEFAULT 'active',
  passthrough_allowed  BOOLEAN      NOT NULL DEFAULT TRUE,
  default_display_mode ENUM('fixed','passthrough') NOT NULL DEFAULT 'fixed',
  -- privacy number used for click-to-dial when the request names none
  default_x            VARCHAR(20)  NULL,
  -- retry policy: how many times a click-to-dial may try A when A was never reached
  max_attempts         INT          NOT NULL DEFAULT 1,
  retry_delay_seconds  INT          NOT NULL DEFAULT 60,
  webhook_url          VARCHAR(2048) NULL,
  webhook_secret       VARCHAR(256) NULL,
  created_at           DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at           DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE api_keys (
  id          VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name        VARCHAR(128) NOT NULL,
  -- first 8 characters of the key, shown to admins to tell keys apart
  key_prefix  CHAR(8)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- sha256 hex of the full key; the key itself is never stored
  key_hash    CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  revoked_at  DATETIME(3)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_api_keys_hash (key_hash),
  KEY ix_api_keys_tenant (tenant_id),
  CONSTRAINT fk_api_keys_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE calls (
  id              CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id       VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request_id      VARCHAR(64)  NOT NULL,
  kind            ENUM('click_to_dial','axb','xb','callback') NOT NULL,
  state           VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'queued',
  display_mode    ENUM('fixed','passthrough') NOT NULL DEFAULT 'fixed',
  x               VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  a               VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  b               VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  ring_timeout_a  INT          NOT NULL,
  ring_timeout_b  INT          NOT NULL,
  max_duration    INT          NOT NULL,
  record          BOOLEAN      NOT NULL DEFAULT FALSE,
  user_data       VARCHAR(256) NULL,
  result          VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  hangup_cause    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  hangup_side     ENUM('a','b','platform','unknown') NULL,
  created_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  completed_at    DATETIME(3)  NULL,
  PRIMARY KEY (id),
  -- the idempotency key: a retried request finds the first call
  UNIQUE KEY uq_calls_request (tenant_id, request_id),
  KEY ix_calls_tenant_created (tenant_id, created_at),
  CONSTRAINT fk_calls_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- No foreign keys on cdrs/bindings: a CDR write must never fail on a constraint the
-- call itself did not violate (it would be retried forever), and it keeps the write path lean.
CREATE TABLE cdrs (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  -- one CDR per call: a redelivered CDR does not add a row
  call_id        CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id      VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind           ENUM('click_to_dial','axb','xb','callback') NOT NULL,
  binding_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NULL,
  x              VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  a              VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  b              VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  started_at     DATETIME(3)  NOT NULL,
  a_ring_at      DATETIME(3)  NULL,
  a_answer_at    DATETIME(3)  NULL,
  b_ring_at      DATETIME(3)  NULL,
  b_answer_at    DATETIME(3)  NULL,
  ended_at       DATETIME(3)  NOT NULL,
  talk_seconds   INT          NOT NULL DEFAULT 0,
  hangup_cause   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  hangup_side    ENUM('a','b','platform','unknown') NOT NULL DEFAULT 'unknown',
  result         VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  recording_ref  VARCHAR(512) NULL,
  user_data      VARCHAR(256) NULL,
  created_at     DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_cdrs_call (call_id),
  KEY ix_cdrs_tenant_started (tenant_id, started_at),
  KEY ix_cdrs_tenant_result_started (tenant_id, result, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE bindings (
  id          CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind        ENUM('axb','xb','callback') NOT NULL,
  x           VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- a/b: the two real numbers; for xb only the number X belongs to is set
  a           VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  b           VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  state       ENUM('active','expired','unbound') NOT NULL DEFAULT 'active',
  expires_at  DATETIME(3)  NOT NULL,
  -- callback bindings: the click-to-dial call that left it
  call_id     CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NULL,
  user_data   VARCHAR(256) NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_bindings_tenant_x (tenant_id, x),
  KEY ix_bindings_x_state (x, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  actor       VARCHAR(128) NOT NULL,
  action      VARCHAR(64)  NOT NULL,
  target      VARCHAR(128) NULL,
  request_id  VARCHAR(64)  NULL,
  details     JSON         NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_audit_tenant_created (tenant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
