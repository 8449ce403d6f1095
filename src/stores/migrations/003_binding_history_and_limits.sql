-- 003: binding history (every change keeps the binding's id) and the blacklist (SPEC §3, §7).

CREATE TABLE binding_history (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  binding_id  CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- what changed, old -> new; real numbers masked (138****5678)
  change_json JSON         NOT NULL,
  actor       VARCHAR(128) NOT NULL,
  -- the API request (or CLI run) that made the change, for tracing (SPEC §7)
  request_id  VARCHAR(64)  NULL,
  created_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_history_binding (binding_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- tenant_id '' is the platform-wide list.
CREATE TABLE blacklist (
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  number      VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id, number),
  KEY ix_blacklist_number (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- the pair limit counts a pair's bindings in the last hour
ALTER TABLE bindings ADD KEY ix_bindings_pair (tenant_id, a, b, created_at);
