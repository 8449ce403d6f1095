-- 057: two indexes that no query reads, paid for by every row written (the CDR writer writes a binding and an
-- outbox row per click-to-dial call).
-- ix_bindings_x_state (x, state): every read of bindings by X names the tenant too and uses ix_bindings_tenant_x.
-- 40,000 callback rows in 250-row INSERTs: 1250-1340 ms mysqld CPU with it, 950-1160 without.
ALTER TABLE bindings DROP KEY ix_bindings_x_state;
-- ix_route_outbox_binding (binding_id): the outbox is read by id; the read-back of a batch's versions also
-- bounds id (id >= the batch's first), which the primary key serves. 40,000 rows: 270-290 ms with it, 140-160 without.
ALTER TABLE route_outbox DROP KEY ix_route_outbox_binding;
