-- 032: the life of a pool number (issue #10 item 7): imported, and every state change, whoever makes
-- it (API, CLI, the abuse disposal). Written by triggers so no path can skip it; the session
-- variables @numguard_actor and @numguard_reason name who and why where the writer sets them.
CREATE TABLE pool_number_events (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  x           VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id   VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  event       ENUM('imported','state') NOT NULL,
  from_state  VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  to_state    VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  actor       VARCHAR(128) NULL,
  reason      VARCHAR(255) NULL,
  created_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (id),
  KEY ix_pool_events_x (tenant_id, x, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO pool_number_events (x, tenant_id, event, from_state, to_state, created_at) SELECT x, tenant_id, 'imported', NULL, state, created_at FROM pool_numbers;

-- One line each: the migration runner splits statements at a ';' that ends a line.
CREATE TRIGGER pool_numbers_imported AFTER INSERT ON pool_numbers FOR EACH ROW INSERT INTO pool_number_events (x, tenant_id, event, from_state, to_state, actor, reason, created_at) VALUES (NEW.x, NEW.tenant_id, 'imported', NULL, NEW.state, @numguard_actor, @numguard_reason, NOW(3));

CREATE TRIGGER pool_numbers_state AFTER UPDATE ON pool_numbers FOR EACH ROW IF NOT (OLD.state <=> NEW.state) OR NOT (OLD.tenant_id <=> NEW.tenant_id) THEN INSERT INTO pool_number_events (x, tenant_id, event, from_state, to_state, actor, reason, created_at) VALUES (NEW.x, NEW.tenant_id, 'state', OLD.state, NEW.state, @numguard_actor, @numguard_reason, NOW(3)); END IF;
