// The Redis registry's Lua (registry.ts runs them with EVAL): every step
// that counts, checks the machine running a session or its fencing token,
// and writes, as one script, so two machines never both take the last slot,
// claim the same session, or write over each other. ARGV[1] is always the
// key prefix; key names are keys.ts's.

// The machine running a live session, or false (sm keeps the machine of ended ones too);
// place: the record, its machine, and the machine's and the owner's live sets.
const RUNNER = `
local function runner(p, id)
  local m = redis.call('HGET', p .. 'sm', id)
  if m and redis.call('SISMEMBER', p .. 'live:' .. m, id) == 1 then return m end
  return false
end
local function place(p, id, owner, m, json)
  redis.call('SET', p .. 's:' .. id, json)
  redis.call('HSET', p .. 'sm', id, m)
  redis.call('SADD', p .. 'live:' .. m, id)
  redis.call('SADD', p .. 'own:' .. owner, id)
end
-- The writer runs the session on machine m and holds its latest fencing token.
local function holds(p, id, m, tok)
  return runner(p, id) == m and redis.call('HGET', p .. 'tok', id) == tok
end
`

// A session is no longer live: its start lock, touches and sealed credentials go.
const RELEASE = `
local function release(p, id)
  local k = redis.call('HGET', p .. 'lock', id)
  if k then
    if redis.call('GET', p .. 'same:' .. k) == id then redis.call('DEL', p .. 'same:' .. k) end
    redis.call('HDEL', p .. 'lock', id)
  end
  redis.call('HDEL', p .. 'act', id)
  redis.call('DEL', p .. 'seal:' .. id)
end
`

// Forget one session everywhere (its token too).
const FORGET = RELEASE + `
local function forget(p, id)
  local json = redis.call('GET', p .. 's:' .. id)
  if not json then return 0 end
  local s = cjson.decode(json)
  local m = redis.call('HGET', p .. 'sm', id)
  if m then redis.call('SREM', p .. 'live:' .. m, id) end
  release(p, id)
  redis.call('SREM', p .. 'own:' .. s.ownerId, id)
  redis.call('ZREM', p .. 'end:' .. s.ownerId, id)
  redis.call('ZREM', p .. 'ended', id)
  redis.call('HDEL', p .. 'sm', id)
  redis.call('HDEL', p .. 'tok', id)
  redis.call('DEL', p .. 's:' .. id)
  return 1
end
`

// ARGV: prefix, id, owner, machine, json, maxSessions, maxPerOwner, start lock ('' for none)
// → 0 inserted (fencing token 1), 1 machine full, 2 key at its cap, or the id of the live session holding the lock.
export const INSERT = RUNNER + `
local p, id, owner, m, json, lock = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[8]
if lock ~= '' then
  local held = redis.call('GET', p .. 'same:' .. lock)
  if held and runner(p, held) then return held end
end
if redis.call('SCARD', p .. 'live:' .. m) >= tonumber(ARGV[6]) then return 1 end
if redis.call('SCARD', p .. 'own:' .. owner) >= tonumber(ARGV[7]) then return 2 end
if lock ~= '' then
  redis.call('SET', p .. 'same:' .. lock, id)
  redis.call('HSET', p .. 'lock', id, lock)
end
place(p, id, owner, m, json)
redis.call('HSET', p .. 'tok', id, '1')
return 0
`

// ARGV: prefix, id, machine, json, token — only by the machine running it, with its
// latest token (a late write of a machine that lost the session changes nothing) → 1, or 0 refused.
export const UPDATE = RUNNER + `
local p, id, m, json, tok = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if holds(p, id, m, tok) then redis.call('SET', p .. 's:' .. id, json) return 1 end
return 0
`

// ARGV: prefix, id, from, to, maxSessions, json ('' to keep the record), lapsed ('1': from's heartbeat must be gone)
// → the new fencing token (the claim's), or 0: not on from any more, no room, or from is alive again.
export const CLAIM = RUNNER + `
local p, id, from, to = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if runner(p, id) ~= from then return 0 end
if ARGV[7] == '1' and redis.call('EXISTS', p .. 'machine:' .. from) == 1 then return 0 end
if from ~= to and redis.call('SCARD', p .. 'live:' .. to) >= tonumber(ARGV[5]) then return 0 end
if ARGV[6] ~= '' then redis.call('SET', p .. 's:' .. id, ARGV[6]) end
redis.call('SREM', p .. 'live:' .. from, id)
redis.call('SADD', p .. 'live:' .. to, id)
redis.call('HSET', p .. 'sm', id, to)
return redis.call('HINCRBY', p .. 'tok', id, 1)
`

// ARGV: prefix, id, machine, token, sealed → 1, or 0 refused.
export const PUT_SEALED = RUNNER + `
if holds(ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then redis.call('SET', ARGV[1] .. 'seal:' .. ARGV[2], ARGV[5]) return 1 end
return 0
`

// ARGV: prefix, machine, ids… → for each id, 1 when machine runs it with the token given after it (id, token pairs).
export const HOLDS = RUNNER + `
local p, m = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 2 do
  out[#out + 1] = holds(p, ARGV[i], m, ARGV[i + 1]) and 1 or 0
end
return out
`

// ARGV: prefix, at, ids… — the latest API call made elsewhere, live sessions only.
export const TOUCH = RUNNER + `
local p, at = ARGV[1], tonumber(ARGV[2])
for i = 3, #ARGV do
  local id = ARGV[i]
  if runner(p, id) and at > tonumber(redis.call('HGET', p .. 'act', id) or '0') then redis.call('HSET', p .. 'act', id, at) end
end
return 1
`

// ARGV: prefix, id, owner, json, endedAt, maxRetained, machine, token ('' : any token, the
// machine must still run it — another machine ending the record of a lapsed one), lapsed ('1':
// machine's heartbeat must be gone) → 1, or 0 refused.
export const FINISH = RUNNER + FORGET + `
local p, id, owner, json, at, max, m, tok = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
if tok == '' then
  if runner(p, id) ~= m then return 0 end
  if ARGV[9] == '1' and redis.call('EXISTS', p .. 'machine:' .. m) == 1 then return 0 end
elseif not holds(p, id, m, tok) then return 0 end
redis.call('SREM', p .. 'live:' .. m, id)
release(p, id)
redis.call('SREM', p .. 'own:' .. owner, id)
redis.call('SET', p .. 's:' .. id, json)
redis.call('ZADD', p .. 'end:' .. owner, at, id)
redis.call('ZADD', p .. 'ended', at, id)
while redis.call('ZCARD', p .. 'ended') > max do
  local oldest = redis.call('ZRANGE', p .. 'ended', 0, 0)[1]
  forget(p, oldest)
end
return 1
`

// ARGV: prefix, id
export const REMOVE = FORGET + 'return forget(ARGV[1], ARGV[2])'

// ARGV: prefix, upTo (endedAt ≤ upTo goes)
export const PRUNE = FORGET + `
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'ended', '-inf', ARGV[2])
for _, id in ipairs(ids) do forget(ARGV[1], id) end
return #ids
`

// ARGV: prefix, id, owner, machine, json, start lock, token — put a live record back after
// Redis lost it (resync), no caps; never over a record that ended, runs elsewhere, or holds another token.
export const RESTORE = RUNNER + `
local p, id, owner, m, json, lock, tok = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('ZSCORE', p .. 'ended', id) then return 0 end
local cur = runner(p, id)
if cur and cur ~= m then return 0 end
local t = redis.call('HGET', p .. 'tok', id)
if t and t ~= tok then return 0 end
if not redis.call('GET', p .. 'same:' .. lock) then
  redis.call('SET', p .. 'same:' .. lock, id)
  redis.call('HSET', p .. 'lock', id, lock)
end
place(p, id, owner, m, json)
redis.call('HSET', p .. 'tok', id, tok)
return 1
`
