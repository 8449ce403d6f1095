-- 055: the switch fleet (issue #9). `switches`: switches added with the CLI (host and port set), and the
-- drain mark of any switch, also one from SWITCHES (host NULL: its address comes from the environment).
-- `switch_health`: what each controller last saw of each switch it drives, for `switch list`.
CREATE TABLE switches (
  name        VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  host        VARCHAR(255) CHARACTER SET ascii NULL,
  port        INT          NULL,
  state       ENUM('active','draining') NOT NULL DEFAULT 'active',
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE switch_health (
  name         VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  reported_by  VARCHAR(128) NOT NULL,
  health       JSON         NOT NULL,
  reported_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (name, reported_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
