-- 014: secrets the platform makes for itself on its first start, shared by every instance.
-- number_hash_key keys the hash under which real numbers appear in Redis key names and abuse
-- flags (unless NUMBER_HASH_KEY is set). Rotating it orphans those keys: the route index is
-- rebuilt from MySQL, and abuse counters start again.
CREATE TABLE platform_secrets (
  name        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  value       VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
