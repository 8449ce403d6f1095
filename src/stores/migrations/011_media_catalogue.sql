-- 011: prompts and announcements come from a catalogue the operator manages (SPEC §7).
-- Tenants name an entry by id; no string a tenant typed is ever played. The switch expands
-- `${...}` in application arguments, so the free-text announcements of before are dropped:
-- they were never safe to play. An operator registers entries with `numguard media add`.
CREATE TABLE media_catalogue (
  id           VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind         ENUM('file','tone') NOT NULL,
  -- file: a path relative to the switch's sounds directory; tone: a TGML spec
  source       VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  description  VARCHAR(255) NOT NULL DEFAULT '',
  created_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

UPDATE bindings SET announcement = NULL WHERE announcement IS NOT NULL;

ALTER TABLE bindings MODIFY announcement VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL;
