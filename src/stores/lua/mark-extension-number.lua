-- Marks X as taking AXE extensions: {"tenantId", "extensionLength", "expiresAt"}, kept until the
-- latest expiry of the AXE bindings written on it. It routes nothing by itself (each extension has
-- its own versioned route): it tells a call to X to ask for that many digits, and whose X it is.
-- KEYS: the marker. ARGV: tenant id, extension length, expiry (epoch ms), and optionally the channel to
--   PUBLISH the marker's key on when it changed (caches of routes drop X's reads).
-- Returns 1 when the marker changed, 0 otherwise.
local tenantId, length, expiresAt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if expiresAt <= now then return 0 end
local raw = redis.call('GET', KEYS[1])
if raw then
  local held = cjson.decode(raw)
  -- The same X of the same tenant with the same length: only a later expiry extends it. Anything
  -- else is a marker of bindings that have all ended (an X takes one length while it carries any).
  if held.tenantId == tenantId and tonumber(held.extensionLength) == length and tonumber(held.expiresAt) >= expiresAt then return 0 end
end
redis.call('SET', KEYS[1], cjson.encode({ tenantId = tenantId, extensionLength = length, expiresAt = expiresAt }), 'PXAT', expiresAt)
if ARGV[4] then redis.call('PUBLISH', ARGV[4], KEYS[1]) end
return 1
