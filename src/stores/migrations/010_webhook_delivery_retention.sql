-- 010: the delivery log is pruned by age (WEBHOOK_LOG_RETENTION_DAYS); this index lets the prune
-- find old rows across tenants without scanning the table.
ALTER TABLE webhook_deliveries ADD KEY ix_webhook_deliveries_created (created_at);
