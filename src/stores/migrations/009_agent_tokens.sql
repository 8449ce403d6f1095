-- 009: agent-console sign-in tokens. Only the sha256 of a token is kept; the token is shown once.
CREATE TABLE agent_tokens (
  id            VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id     VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name          VARCHAR(128) NOT NULL,
  -- the agent's own phone: leg A of the calls placed from the console
  agent_number  VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  token_hash    CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  revoked_at    DATETIME(3)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_agent_tokens_hash (token_hash),
  KEY ix_agent_tokens_tenant (tenant_id),
  CONSTRAINT fk_agent_tokens_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
