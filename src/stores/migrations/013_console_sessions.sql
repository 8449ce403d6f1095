-- 013: agent-console sign-ins become server-side sessions. The browser's cookie carries a random
-- session id; only its sha256 is kept here (a leaked table signs no one in), with the agent token
-- it was opened with. A session ends at expires_at (absolute), after CONSOLE_IDLE_MINUTES without
-- a request (last_seen_at), at sign-out or when its agent token is revoked (revoked_at).
CREATE TABLE console_sessions (
  id_hash        CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id      VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  agent_token_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at     DATETIME(3) NOT NULL,
  last_seen_at   DATETIME(3) NOT NULL,
  expires_at     DATETIME(3) NOT NULL,
  revoked_at     DATETIME(3) NULL,
  PRIMARY KEY (id_hash),
  KEY ix_console_sessions_token (agent_token_id),
  KEY ix_console_sessions_expires (expires_at),
  CONSTRAINT fk_console_sessions_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT fk_console_sessions_token FOREIGN KEY (agent_token_id) REFERENCES agent_tokens (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- An agent token may expire (NULL: never; tokens made before this migration keep working until
-- revoked). An expired token signs no one in, and the sessions opened with it end with it.
ALTER TABLE agent_tokens ADD COLUMN expires_at DATETIME(3) NULL AFTER created_at;
