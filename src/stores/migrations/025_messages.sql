-- 025: short messages relayed through X (README "Text messages"). One row per message; parties
-- only masked (and as the keyed hash the per-sender filter and limits use); the body only when
-- the tenant keeps bodies, cleared when its retention is over. dedup_key makes a message the
-- carrier or the queue delivers twice one row, so it is forwarded once.
CREATE TABLE messages (
  id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  message_id        CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  dedup_key         CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id         VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  binding_id        CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NULL,
  x                 VARCHAR(20)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  direction         ENUM('a_to_b','b_to_a','to_b') NULL,
  sender_hash       CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  sender_masked     VARCHAR(24)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  recipient_masked  VARCHAR(24)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  transport         ENUM('sip','smpp') NOT NULL,
  parts             SMALLINT UNSIGNED NOT NULL,
  length            INT UNSIGNED NOT NULL,
  status            ENUM('accepted','forwarded','delivered','failed','refused') NOT NULL,
  refusal           ENUM('unbound','restricted','blacklisted','rate_limited') NULL,
  failure           VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  out_parts         SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  delivered_parts   SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  received_at       DATETIME(3)  NOT NULL,
  forwarded_at      DATETIME(3)  NULL,
  delivered_at      DATETIME(3)  NULL,
  failed_at         DATETIME(3)  NULL,
  body              TEXT         CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  body_until        DATETIME(3)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_message_id (message_id),
  UNIQUE KEY ux_dedup (dedup_key),
  KEY ix_tenant_time (tenant_id, received_at, id),
  KEY ix_body_until (body_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The carrier's id of each part sent out (SMPP message_id, or the switch's event id for SIP):
-- how a delivery receipt finds its message.
CREATE TABLE message_carrier_ids (
  carrier_id   VARCHAR(80)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  transport    ENUM('sip','smpp') NOT NULL,
  message_id   CHAR(36)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  state        ENUM('sent','delivered','failed') NOT NULL DEFAULT 'sent',
  PRIMARY KEY (transport, carrier_id),
  KEY ix_message (message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A tenant's message settings: its carrier path (NULL: the platform's MESSAGE_TRANSPORT), and
-- whether bodies are kept, for how many days.
CREATE TABLE message_settings (
  tenant_id            VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  transport            ENUM('sip','smpp') NULL,
  store_body           BOOLEAN      NOT NULL DEFAULT FALSE,
  body_retention_days  SMALLINT UNSIGNED NOT NULL DEFAULT 7,
  updated_at           DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
