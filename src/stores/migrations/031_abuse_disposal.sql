-- 031: anomaly flags carry their evidence and, where they have one, the X involved; a flag about a
-- tenant's binding rate names no number. What the disposal policy did about a flag (quarantine an
-- X, block a number) is an action, lifted by hand (audited) or, for a block, ended by its expiry.
ALTER TABLE abuse_flags
  MODIFY number_hash CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
  MODIFY number_masked VARCHAR(32) NULL,
  ADD COLUMN x VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER number_masked,
  ADD COLUMN evidence JSON NULL AFTER window_seconds,
  ADD KEY ix_abuse_flags_x (tenant_id, x, created_at);

CREATE TABLE abuse_actions (
  id              BIGINT       NOT NULL AUTO_INCREMENT,
  tenant_id       VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  flag_id         BIGINT       NOT NULL,
  action          ENUM('quarantine','block') NOT NULL,
  -- quarantine: the pool number; block: the number's hash and masked form (the blacklist row holds it)
  x               VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  number_hash     CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NULL,
  number_masked   VARCHAR(32)  NULL,
  until_at        DATETIME(3)  NULL,
  created_at      DATETIME(3)  NOT NULL,
  lifted_at       DATETIME(3)  NULL,
  lifted_by       VARCHAR(128) NULL,
  PRIMARY KEY (id),
  KEY ix_abuse_actions_tenant (tenant_id, created_at, id),
  KEY ix_abuse_actions_x (tenant_id, x, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A block is a blacklist row with an expiry, tied to its action so that lifting it removes exactly it.
ALTER TABLE blacklist
  ADD COLUMN expires_at DATETIME(3) NULL,
  ADD COLUMN abuse_action_id BIGINT NULL,
  ADD KEY ix_blacklist_expiry (expires_at);
