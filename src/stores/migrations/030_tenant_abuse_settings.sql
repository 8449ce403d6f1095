-- 030: abuse limits per tenant (issue #10 item 5). One row per tenant that set anything; a NULL
-- column falls back to the platform default (config.ts `abuse`). `disposal` maps an anomaly kind to
-- what is done when it is flagged (warn, quarantine, block); a kind it does not name is warn only.
CREATE TABLE tenant_abuse_settings (
  tenant_id                     VARCHAR(36)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  calls_per_caller_per_minute   INT          NULL,
  bindings_per_number_per_hour  INT          NULL,
  pair_bindings_per_hour        INT          NULL,
  fanout_distinct_parties       INT          NULL,
  fanout_window_seconds         INT          NULL,
  caller_burst_calls            INT          NULL,
  x_burst_calls                 INT          NULL,
  burst_window_seconds          INT          NULL,
  short_call_seconds            INT          NULL,
  short_call_share_percent      INT          NULL,
  short_call_min_calls          INT          NULL,
  short_call_window_seconds     INT          NULL,
  bulk_binding_factor           INT          NULL,
  bulk_binding_min_per_minute   INT          NULL,
  block_seconds                 INT          NULL,
  disposal                      JSON         NULL,
  updated_at                    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (tenant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
