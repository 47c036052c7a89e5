"""Lua scripts: each multi-key change is one atomic script (one round trip, no races).

Scripts build session keys from the prefixes in keys.py (injected below), so key names still
live in one place. They touch keys derived from stored values (a subject's sessions), which a
standalone or replicated Redis allows; Redis Cluster would need hash tags (not supported).
"""

from . import keys

PRELUDE = f"""
local P_SESSION = '{keys.SESSION_PREFIX}'
local P_TOKEN = '{keys.TOKEN_PREFIX}'
local P_SUBJECT = '{keys.SUBJECT_PREFIX}'
local K_SESSION_EXPIRY = '{keys.SESSION_EXPIRY}'
local K_REVOCATIONS = '{keys.REVOCATIONS}'
local K_BAN_CHANGES = '{keys.BAN_CHANGES}'

-- Announces a ban or unban on the ban changes channel in the script that makes it, so a watcher
-- resuming from its last position never misses one (BanService.WatchBans).
local function announce_ban(kind, subject, ban_json)
  redis.call('XADD', K_BAN_CHANGES, 'MAXLEN', '~', {keys.BAN_CHANGES_MAX_LEN}, '*', 'type', kind,
             'message', subject, 'attrs', cjson.encode({{subject = subject}}), 'ban', ban_json)
end

-- Announces a revocation on the revocations channel (a notification entry: type, message, attrs),
-- in the same script as the revocation itself, so no revoked session's stream is missed.
local function announce_revoked(field, value)
  redis.call('XADD', K_REVOCATIONS, 'MAXLEN', '~', 10000, '*', 'type', 'session_revoked',
             'message', field .. ' revoked', 'attrs', cjson.encode({{[field] = value}}))
end

-- Deletes a session and its indexes; returns its expiry ms, or nil when it did not exist.
local function drop_session(sid)
  local k = P_SESSION .. sid
  local f = redis.call('HMGET', k, 'sub', 'member', 'th', 'exp')
  if not f[1] then
    redis.call('ZREM', K_SESSION_EXPIRY, sid)
    return nil
  end
  redis.call('DEL', k, P_TOKEN .. f[3])
  redis.call('ZREM', P_SUBJECT .. f[1], f[2])
  redis.call('ZREM', K_SESSION_EXPIRY, sid)
  announce_revoked('session_id', sid)
  return tonumber(f[4])
end

-- Deletes every session of a subject; returns how many were still live at now.
local function revoke_subject(subject, now)
  local zkey = P_SUBJECT .. subject
  local members = redis.call('ZRANGE', zkey, 0, -1)
  local live = 0
  for _, m in ipairs(members) do
    local sid = string.sub(m, 17)  -- after '<15 digits>:'
    local exp = drop_session(sid)
    if exp and exp > now then live = live + 1 end
  end
  redis.call('DEL', zkey)
  return live
end

-- Appends to a ban history ZSET: "<time ms, 15 digits>:<seq, 6 digits>:<rest>"; seq orders
-- events that share a millisecond.
local function history_add(key, t, rest)
  local last = redis.call('ZRANGE', key, '+', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1]
  local seq = 0
  if last and string.sub(last, 1, 15) == t then seq = tonumber(string.sub(last, 17, 22)) + 1 end
  redis.call('ZADD', key, 0, t .. ':' .. string.format('%06d', seq) .. ':' .. rest)
end

local function ban_alive(json, now)
  if not json then return false end
  local b = cjson.decode(json)
  return b.permanent or b.expire_ms > now
end
"""

# KEYS: ban, session hash, token, subject index, expiry index.
# ARGV: now, sid, subject, role, attrs json, exp, max, ttl, token hash, subject-index member.
CREATE_SESSION = PRELUDE + """
local now = tonumber(ARGV[1])
if ban_alive(redis.call('GET', KEYS[1]), now) then return 0 end
redis.call('HSET', KEYS[2], 'sub', ARGV[3], 'role', ARGV[4], 'attrs', ARGV[5], 'ctime', ARGV[1],
           'exp', ARGV[6], 'max', ARGV[7], 'ttl', ARGV[8], 'used', ARGV[1], 'th', ARGV[9], 'member', ARGV[10])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], 0, ARGV[10])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[2])
return 1
"""

# Shared by validate and refresh: the live session behind a token, or nil (expired ones are deleted).
_LOOKUP = """
local now = tonumber(ARGV[1])
local sid = redis.call('GET', KEYS[1])
if not sid then return nil end
local k = P_SESSION .. sid
local f = redis.call('HMGET', k, 'exp', 'max', 'ttl', 'used')
if not f[1] then
  redis.call('DEL', KEYS[1])
  return nil
end
local exp, max, ttl, used = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
if exp <= now then
  drop_session(sid)
  return nil
end
"""

# KEYS: token. ARGV: now, sliding ('1'/'0').
VALIDATE_SESSION = PRELUDE + _LOOKUP + """
if ARGV[2] == '1' then
  local ne = math.min(now + ttl, max)
  if ne > exp then
    redis.call('HSET', k, 'exp', ne)
    redis.call('ZADD', K_SESSION_EXPIRY, ne, sid)
  end
end
-- last_used_time may lag by up to 1 s: skip the write (and its AOF entry) on hot tokens.
if now - used >= 1000 then redis.call('HSET', k, 'used', now) end
return {sid, redis.call('HGETALL', k)}
"""

# KEYS: token. ARGV: now, ttl ms (0: the session's own), new token hash ('' : keep the token).
REFRESH_SESSION = PRELUDE + _LOOKUP + """
local want = tonumber(ARGV[2])
if want == 0 then want = ttl end
local ne = math.min(now + want, max)
redis.call('HSET', k, 'exp', ne, 'used', now)
redis.call('ZADD', K_SESSION_EXPIRY, ne, sid)
if ARGV[3] ~= '' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', P_TOKEN .. ARGV[3], sid)
  redis.call('HSET', k, 'th', ARGV[3])
end
return {sid, redis.call('HGETALL', k)}
"""

# KEYS: -. ARGV: now, session id or '' , token hash or ''. Returns 1 when a live session was revoked.
REVOKE_SESSION = PRELUDE + """
local now = tonumber(ARGV[1])
local sid = ARGV[2]
if sid == '' then
  sid = redis.call('GET', P_TOKEN .. ARGV[3])
  if not sid then return 0 end
end
local exp = drop_session(sid)
if exp and exp > now then return 1 end
return 0
"""

# ARGV: now, subject.
REVOKE_SUBJECT = PRELUDE + """
return revoke_subject(ARGV[2], tonumber(ARGV[1]))
"""

# ARGV: now, max sessions. Deletes sessions whose stored expiry has passed.
SWEEP_SESSIONS = PRELUDE + """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', K_SESSION_EXPIRY, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, sid in ipairs(due) do
  local exp = tonumber(redis.call('HGET', P_SESSION .. sid, 'exp'))
  if (not exp) or exp <= now then
    drop_session(sid)
    n = n + 1
  end
end
return n
"""

# KEYS: ban, ban index, ban expiry, history.
# ARGV: now, new ban json, new expire ms (-1 permanent), new index member, history entry
#       ("<event_id>:<json>"), history cutoff member, subject, idempotency key ('' none),
#       idempotency ttl ms, event time (15 digits).
# Returns {active ban json, replayed 0/1, revoked session count}.
BAN = PRELUDE + """
local now = tonumber(ARGV[1])
if ARGV[8] ~= '' then
  local prev = redis.call('GET', ARGV[8])
  if prev then
    local p = cjson.decode(prev)
    return {p[1], 1, p[2]}
  end
end
local new, new_exp, subject = ARGV[2], tonumber(ARGV[3]), ARGV[7]
local active = new
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cjson.decode(cur)
  if ban_alive(cur, now) and (c.permanent or (new_exp ~= -1 and c.expire_ms >= new_exp)) then
    active = cur
  else
    redis.call('ZREM', KEYS[2], c.index_member)
    redis.call('ZREM', KEYS[3], subject)
  end
end
if active == new then
  redis.call('SET', KEYS[1], new)
  redis.call('ZADD', KEYS[2], 0, ARGV[4])
  if new_exp ~= -1 then redis.call('ZADD', KEYS[3], new_exp, subject) end
  announce_ban('banned', subject, new)
end
history_add(KEYS[4], ARGV[10], ARGV[5])
redis.call('ZREMRANGEBYLEX', KEYS[4], '-', '(' .. ARGV[6])
local revoked = revoke_subject(subject, now)
if ARGV[8] ~= '' then
  redis.call('SET', ARGV[8], cjson.encode({active, revoked}), 'PX', tonumber(ARGV[9]))
end
return {active, 0, revoked}
"""

# KEYS: ban, ban index, ban expiry, history.
# ARGV: now, history entry prefix ("<event_id>:<json up to "ban":>"), history cutoff member,
#       subject, event time (15 digits).
# Returns the lifted ban json, or nil when none was active.
UNBAN = PRELUDE + """
local now = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if not cur then return nil end
local c = cjson.decode(cur)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], c.index_member)
redis.call('ZREM', KEYS[3], ARGV[4])
if not ban_alive(cur, now) then return nil end
announce_ban('unbanned', ARGV[4], cur)
history_add(KEYS[4], ARGV[5], ARGV[2] .. cur .. '}')
redis.call('ZREMRANGEBYLEX', KEYS[4], '-', '(' .. ARGV[3])
return cur
"""

# KEYS: ban index, ban expiry. ARGV: now, max bans, ban key prefix.
SWEEP_BANS = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, subject in ipairs(due) do
  local k = ARGV[3] .. subject
  local cur = redis.call('GET', k)
  local c = cur and cjson.decode(cur)
  if c and (not c.permanent) and c.expire_ms > now then
    redis.call('ZADD', KEYS[2], c.expire_ms, subject)  -- stale score: keep the live ban indexed
  else
    redis.call('ZREM', KEYS[2], subject)
    if c and not c.permanent then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[1], c.index_member)
      n = n + 1
    end
  end
end
return n
"""

# Batch ban lookup that answers only for the subjects that have a ban: bans are rare, and a
# reply of 100 nils costs redis-py (pure-Python RESP parsing) more than the lookups cost Redis.
# Subjects travel as one JSON argument rather than 100 keys for the same reason.
# ARGV: JSON array of subjects, ban key prefix. Returns {position (1-based), ban json, ...}.
GET_BANS = """
local out = {}
for i, subject in ipairs(cjson.decode(ARGV[1])) do
  local b = redis.call('GET', ARGV[2] .. subject)
  if b then
    out[#out + 1] = i
    out[#out + 1] = b
  end
end
return out
"""

# KEYS: cache, lease. ARGV: lease token, lease ttl ms.
# Returns {1, value, pttl} on a hit, {2, pttl} when the lease was granted, {3, pttl} to wait.
GET_OR_LEASE = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v, redis.call('PTTL', KEYS[1])} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {2, tonumber(ARGV[2])}
end
return {3, redis.call('PTTL', KEYS[2])}
"""

# KEYS: cache, lease. ARGV: value, ttl ms, lease token. Returns 1 when the lease was current (released).
SET_WITH_LEASE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: lease token.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: stream. ARGV: max len, retention ms, then field/value pairs. Returns the new entry id.
PUBLISH = """
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[1]), '*', unpack(fields))
local ms = tonumber(string.match(id, '^(%d+)'))
redis.call('XTRIM', KEYS[1], 'MINID', '~', ms - tonumber(ARGV[2]))
return id
"""

# GCRA ("sliding window" without fixed boundaries): capacity returns continuously at
# limit/window, at most `limit` units at once. State: debt in unit*ms (0 = full capacity),
# scaled by limit so integer inputs stay exact in Lua's doubles. Shared by RATE_LIMIT and
# GATEWAY_ADMIT, so the gateway's per-caller limit is the same limiter as Consume.
# Returns {allowed 0/1, remaining, retry_after ms, reset_after ms}.
_GCRA = """
local function gcra(key, limit, window, cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local s = redis.call('HMGET', key, 'debt', 'at')
  local debt = 0
  if s[1] then
    debt = math.max(0, tonumber(s[1]) - (now - tonumber(s[2])) * limit)
  end
  local cap = window * limit
  local want = debt + cost * window
  if want > cap then
    local retry = math.ceil((want - cap) / limit)
    return {0, math.floor((cap - debt) / window), retry, math.ceil(debt / limit)}
  end
  local reset = math.ceil(want / limit)
  redis.call('HSET', key, 'debt', string.format('%.17g', want), 'at', string.format('%d', now))
  redis.call('PEXPIRE', key, math.max(reset, 1))
  return {1, math.floor((cap - want) / window), 0, reset}
end
"""

# KEYS: limiter. ARGV: limit, window ms, cost.
RATE_LIMIT = _GCRA + """
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""

# The gateway's whole decision for one request in one round trip: the session behind the token
# (as VALIDATE_SESSION without sliding), the subject's ban, whether the role holds the access the
# path needs, and the caller's rate limit. Order matches the Python it replaced: invalid token,
# then unknown path, then access, then limit (a refused call consumes nothing).
# KEYS: token. ARGV: now, access the path needs (0: no such path), per-role policy as
#       "<role> <access bits> <limit> <window ms> ..." (bit n set: the role holds access n;
#       limit 0: unmetered; a role not listed holds nothing), rate-limit key prefix.
# Returns {code, sid, subject, role, retry_after ms}: code 0 admitted, 1 invalid session,
# 2 no such path, 3 access not held, 4 over the limit.
GATEWAY_ADMIT = PRELUDE + _GCRA + f"""
local P_BAN = '{keys.ban("")}'
""" + """
local now = tonumber(ARGV[1])
local sid = redis.call('GET', KEYS[1])
if not sid then return {1} end
local k = P_SESSION .. sid
local f = redis.call('HMGET', k, 'exp', 'used', 'sub', 'role')
if not f[1] then
  redis.call('DEL', KEYS[1])
  return {1}
end
if tonumber(f[1]) <= now then
  drop_session(sid)
  return {1}
end
if now - tonumber(f[2]) >= 1000 then redis.call('HSET', k, 'used', now) end
local sub, role = f[3], f[4]
-- Banning revokes sessions in the same script, so this only guards that invariant.
if ban_alive(redis.call('GET', P_BAN .. sub), now) then return {1} end
local needed = tonumber(ARGV[2])
if needed == 0 then return {2, sid, sub, role} end
local bits, limit, window = 0, 0, 0
for name, b, l, w in string.gmatch(ARGV[3], '(%S+) (%d+) (%d+) (%d+)') do
  if name == role then bits, limit, window = tonumber(b), tonumber(l), tonumber(w) end
end
if math.floor(bits / 2 ^ needed) % 2 ~= 1 then return {3, sid, sub, role} end
if limit > 0 and sub ~= '' then
  local d = gcra(ARGV[4] .. sub, limit, window, 1)
  if d[1] == 0 then return {4, sid, sub, role, d[3]} end
end
return {0, sid, sub, role}
"""
