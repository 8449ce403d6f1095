-- One versioned change to one route (X, caller). What a route holds: the route JSON with its
-- "version", or a tombstone {"version", "removed": true, "until"} left by a removal, so that an
-- older write arriving late (a retry, a slow instance, a rebuild from an older read) never brings
-- back a route that was taken away. Versions only grow; a write older than what is held is dropped.
-- KEYS: the route. ARGV: op ('put' | 'remove' | 'provisional'), version, binding id,
--   put/provisional: the route JSON, beginning {"version":<version>, and its expiry (epoch ms);
--   remove: the removed binding's expiry (epoch ms): until then a late write of it must stay refused;
--   then the channel to PUBLISH the route key on when the route changed.
-- Returns 1 when the route changed, 0 otherwise.
local op, version, bindingId, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[6]
local raw = redis.call('GET', KEYS[1])
local held = raw and cjson.decode(raw) or nil
local heldVersion = held and tonumber(held.version or 0) or -1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function publish()
  redis.call('PUBLISH', channel, KEYS[1])
  return 1
end

if op == 'put' then
  local expiresAt = tonumber(ARGV[5])
  if held and (heldVersion > version or (heldVersion == version and (held.removed or held.bindingId ~= bindingId))) then return 0 end
  if expiresAt <= now then return 0 end
  if raw == ARGV[4] then return 0 end
  redis.call('SET', KEYS[1], ARGV[4], 'PXAT', expiresAt)
  return publish()
end

if op == 'remove' then
  if held and (heldVersion > version or (heldVersion == version and held.removed)) then return 0 end
  -- Keep refusing late writes of whatever this replaces for as long as any of them could route.
  local untilMs = tonumber(ARGV[5])
  if held then untilMs = math.max(untilMs, tonumber(held['until'] or held.expiresAt or 0)) end
  if untilMs <= now then
    if not held then return 0 end
    redis.call('DEL', KEYS[1])
    return publish()
  end
  redis.call('SET', KEYS[1], cjson.encode({ version = version, removed = true, bindingId = bindingId, ['until'] = untilMs }), 'PXAT', untilMs)
  if held and held.removed then return 0 end
  return publish()
end

-- provisional: a callback binding made routable when its call ends, before MySQL has its row (the
-- outbox confirms it with a version). It replaces only an older callback route (B reaches whoever
-- called last), never an AXB or XB route, and never a removal.
local expiresAt = tonumber(ARGV[5])
if expiresAt <= now then return 0 end
if held and (held.removed or held.kind ~= 'callback' or tonumber(held.expiresAt) > expiresAt) then return 0 end
-- It keeps the version held, so what was older than the route it replaces stays refused.
local value = ARGV[4]
if held then value = '{"version":' .. string.format('%d', heldVersion) .. string.sub(value, string.len('{"version":0') + 1) end
redis.call('SET', KEYS[1], value, 'PXAT', expiresAt)
return publish()
