-- 056: the expiry sweep (every 5 s) looks for active bindings past their expiry in expiry order. Without
-- this index it read and sorted the whole bindings table each time, ended bindings included, a cost
-- that grew with every binding ever made (measured: the rows read every 5 s followed the table's size).
ALTER TABLE bindings ADD KEY ix_bindings_state_expiry (state, expires_at);
