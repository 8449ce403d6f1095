-- Versioned changes to routes (X, caller), one per key, applied in order. What a route holds: the
-- route JSON with its "version", or a tombstone {"version", "removed": true, "until"} left by a
-- removal, so that an older write arriving late (a retry, a slow instance, a rebuild from an older
-- read) never brings back a route that was taken away. Versions only grow; a write older than what
-- is held is dropped.
-- KEYS: the routes. ARGV: the channel to PUBLISH a route key on when that route changed, then per
--   key five: op ('put' | 'remove' | 'provisional'), version, binding id,
--   put/provisional: the route JSON, beginning {"version":<version>; remove: '';
--   then the expiry (epoch ms): the route's, or for a removal the removed binding's (until then a
--   late write of it must stay refused).
-- Returns per key 1 when the route changed, 0 otherwise.
local channel = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function apply(key, op, version, bindingId, json, expiresAt)
  local raw = redis.call('GET', key)
  local held = raw and cjson.decode(raw) or nil
  local heldVersion = held and tonumber(held.version or 0) or -1

  local function publish()
    redis.call('PUBLISH', channel, key)
    return 1
  end

  if op == 'put' then
    if held and (heldVersion > version or (heldVersion == version and (held.removed or held.bindingId ~= bindingId))) then return 0 end
    if expiresAt <= now then return 0 end
    if raw == json then return 0 end
    redis.call('SET', key, json, 'PXAT', expiresAt)
    return publish()
  end

  if op == 'remove' then
    if held and (heldVersion > version or (heldVersion == version and held.removed)) then return 0 end
    -- Keep refusing late writes of whatever this replaces for as long as any of them could route.
    local untilMs = expiresAt
    if held then untilMs = math.max(untilMs, tonumber(held['until'] or held.expiresAt or 0)) end
    if untilMs <= now then
      if not held then return 0 end
      redis.call('DEL', key)
      return publish()
    end
    redis.call('SET', key, cjson.encode({ version = version, removed = true, bindingId = bindingId, ['until'] = untilMs }), 'PXAT', untilMs)
    if held and held.removed then return 0 end
    return publish()
  end

  -- provisional: a callback binding made routable when its call ends, before MySQL has its row (the
  -- outbox confirms it with a version). It replaces only an older callback route (B reaches whoever
  -- called last), never an AXB or XB route, and never a removal.
  if expiresAt <= now then return 0 end
  if held and (held.removed or held.kind ~= 'callback' or tonumber(held.expiresAt) > expiresAt) then return 0 end
  -- It keeps the version held, so what was older than the route it replaces stays refused.
  local value = json
  if held then value = '{"version":' .. string.format('%d', heldVersion) .. string.sub(value, string.len('{"version":0') + 1) end
  redis.call('SET', key, value, 'PXAT', expiresAt)
  return publish()
end

local changed = {}
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 5
  changed[i] = apply(KEYS[i], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5]))
end
return changed
