-- 002: the number pool and the reuse invariant of bindings (SPEC §3), enforced by the database.
--
-- A call to X from caller C is routed by the pair (C, X). So:
--   1. on one X, each real number is in at most one ACTIVE binding:
--      binding_members has one row per (x, number) of an active binding, and (x, number) is
--      its PRIMARY KEY; a second active binding with that number on that X cannot be written.
--   2. an XB binding holds its X alone:
--      an XB writes the member (x, '*'); the triggers below refuse a '*' member on an X that
--      has any other member, and any other member on an X that has a '*' member, whoever
--      writes it. Binds on one X are serialised where it matters by the lock on its pool row:
--      an AXB takes it shared (AXBs on one X run side by side), an XB takes it exclusive.
-- Ended bindings (expired, unbound) keep their row in `bindings` as history; only their
-- member rows are deleted.

CREATE TABLE pool_numbers (
  x                  VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id          VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- city / area code the number serves, e.g. '010', '0755'
  area               VARCHAR(8)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  state              ENUM('enabled','disabled','quarantined') NOT NULL DEFAULT 'enabled',
  legacy             BOOLEAN      NOT NULL DEFAULT FALSE,
  created_at         DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (x),
  KEY ix_pool_allocation (tenant_id, state, area, x)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE binding_members (
  x           VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  number      VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  binding_id  CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- copied from the binding: routing and allocation treat a member past it as gone at once,
  -- whatever the cleanup is doing
  expires_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (x, number),
  KEY ix_members_number (number, expires_at),
  KEY ix_members_binding (binding_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One line each: the migration runner splits statements at a ';' that ends a line.
CREATE TRIGGER binding_members_xb_alone BEFORE INSERT ON binding_members FOR EACH ROW IF (NEW.number = '*' AND EXISTS (SELECT 1 FROM binding_members m WHERE m.x = NEW.x AND m.binding_id <> NEW.binding_id)) OR (NEW.number <> '*' AND EXISTS (SELECT 1 FROM binding_members m WHERE m.x = NEW.x AND m.number = '*' AND m.binding_id <> NEW.binding_id)) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'binding_conflict: an XB binding holds its X alone'; END IF;

ALTER TABLE bindings
  ADD COLUMN request_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL AFTER tenant_id,
  ADD COLUMN restriction   ENUM('both','a_to_b','b_to_a') NOT NULL DEFAULT 'both' AFTER b,
  ADD COLUMN record_call   BOOLEAN      NOT NULL DEFAULT FALSE AFTER restriction,
  ADD COLUMN max_duration  INT          NULL AFTER record_call,
  ADD COLUMN announcement  VARCHAR(255) NULL AFTER max_duration,
  ADD COLUMN allow_list    JSON         NULL AFTER announcement,
  ADD UNIQUE KEY uq_bindings_request (tenant_id, request_id);
