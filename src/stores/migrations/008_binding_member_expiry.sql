-- 008: binding a number on X ends the expired bindings on that X first (their numbers come back at
-- once). Without this index that look-up read every member of X, so a busy X (first fit packs
-- disjoint pairs onto the lowest numbers) made each bind slower than the last.
ALTER TABLE binding_members ADD KEY ix_members_x_expiry (x, expires_at);
