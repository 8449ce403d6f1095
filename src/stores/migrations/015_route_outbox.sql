-- 015: every change that affects routing reaches the Redis route index through this outbox. A row is
-- written in the transaction that makes the change and deleted once Redis has it; a row left behind
-- (Redis down, the process killed after the commit) is applied by whichever controller finds it.
-- Its id is the change's version: conflicting changes take their locks before writing their row, so
-- a later change always has the larger id, and Redis never lets an older version overwrite a newer.
CREATE TABLE route_outbox (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  binding_id  CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- the routes the binding had before an update changed its numbers (JSON), so they are taken away
  previous    TEXT         NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_route_outbox_binding (binding_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The version of the binding's last routing change: what its routes carry in Redis.
ALTER TABLE bindings ADD COLUMN route_version BIGINT UNSIGNED NOT NULL DEFAULT 0;
