-- 040: a warning tone before a call's maximum duration ends it (issue #10 item 4).
-- bindings: seconds before the end; NULL = the platform's default (CALL_END_WARNING_SECONDS), 0 = none.
ALTER TABLE bindings ADD COLUMN end_warning_seconds INT NULL;
-- calls (click-to-dial): as resolved when the call was accepted; 0 = none.
ALTER TABLE calls ADD COLUMN end_warning_seconds INT NOT NULL DEFAULT 0;
-- a tenant can turn the warning off for its click-to-dial calls (a request may still ask for it).
ALTER TABLE tenants ADD COLUMN click_to_dial_end_warning BOOLEAN NOT NULL DEFAULT TRUE;
