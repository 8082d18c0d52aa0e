"""The review queue's Lua scripts: every state change of an item is one script, so claims,
verdicts, releases and lease expiry never race, whatever the number of reviewers and replicas.

All scripts take the same keys (`KEYS` below). Each item's review state is one JSON object in
the `items` hash: `need` (how many reviewers judge it), `candidate` (the letter, A or B, its
answer has in blind mode), `votes` (reviewer -> label) and `held` (reviewer -> [claimed ms,
expires ms]). A lease that ran out stays in `held` as a tombstone, so its late verdict is told
"expired"; the live ones are also members `id|reviewer` of the `expiry` sorted set, which the
claim script reaps. An item is in the `queue` sorted set (by priority) while its votes and live
leases are fewer than `need`.
"""

from __future__ import annotations

from typing import Final

from gateway.constants import STREAM_FIELD

# Fields of the `stats` hash, counted by the verdict script: verdicts by label (`label:<label>`)
# and by route (`route:<route>:<label>`), items by final label (`final:<label>`) and final
# labels that were tied. The queue's stats and the rollout judge read them.
STAT_LABEL: Final = "label:"
STAT_ROUTE: Final = "route:"
STAT_FINAL: Final = "final:"
STAT_FINAL_TIED: Final = "final:tied"
# Fields of the `agreement` hash (review/agreement.py reads them): per number n of verdicts,
# `items:<n>`, `squares:<n>`, `labels:<n>:<label>`; for n = 2 `pair:<label>:<label>`; and
# `reviewer:<name>:verdicts|finished|with_majority`.
AGREEMENT_ITEMS: Final = "items:"
AGREEMENT_SQUARES: Final = "squares:"
AGREEMENT_LABELS: Final = "labels:"
AGREEMENT_PAIR: Final = "pair:"
AGREEMENT_REVIEWER: Final = "reviewer:"
# Fields of the verdict that completes an item, beside its record: the final label and
# whether it was tied ("1" or "0").
VERDICT_FINAL: Final = "final"
VERDICT_TIED: Final = "tied"

# The order of the keys every script is called with.
KEYS: Final = (
    "stream",
    "queue",
    "items",
    "expiry",
    "priorities",
    "tags",
    "verdicts",
    "stats",
    "agreement",
    "durations",
)


def _lua_names(**names: str) -> str:
    """Lua locals holding the field names above, so that the scripts spell none of them."""
    return "".join(f"local {name} = '{value}'\n" for name, value in names.items())


_COMMON = (
    _lua_names(
        DATA=STREAM_FIELD,
        STAT_LABEL=STAT_LABEL,
        STAT_ROUTE=STAT_ROUTE,
        STAT_FINAL=STAT_FINAL,
        STAT_FINAL_TIED=STAT_FINAL_TIED,
        AGREEMENT_ITEMS=AGREEMENT_ITEMS,
        AGREEMENT_SQUARES=AGREEMENT_SQUARES,
        AGREEMENT_LABELS=AGREEMENT_LABELS,
        AGREEMENT_PAIR=AGREEMENT_PAIR,
        AGREEMENT_REVIEWER=AGREEMENT_REVIEWER,
        VERDICT_FINAL=VERDICT_FINAL,
        VERDICT_TIED=VERDICT_TIED,
    )
    + """
local STREAM, QUEUE, ITEMS, EXPIRY, PRIORITIES, TAGS, VERDICTS, STATS, AGREEMENT, DURATIONS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]

local function load(id)
  local raw = redis.call('HGET', ITEMS, id)
  if not raw then return nil end
  local state = cjson.decode(raw)
  state.need = state.need or 1
  state.votes = state.votes or {}
  state.held = state.held or {}
  return state
end

local function save(id, state)
  redis.call('HSET', ITEMS, id, cjson.encode(state))
end

local function size(map)
  local n = 0
  for _ in pairs(map) do n = n + 1 end
  return n
end

local function holds(state, reviewer, now)
  local lease = state.held[reviewer]
  return lease ~= nil and lease[2] >= now
end

-- Offered while the verdicts in and the live leases out are fewer than the item needs.
local function offer(id, state, now)
  local taken = size(state.votes)
  for reviewer in pairs(state.held) do
    if holds(state, reviewer, now) then taken = taken + 1 end
  end
  if taken < state.need then
    redis.call('ZADD', QUEUE, redis.call('HGET', PRIORITIES, id) or '0', id)
  else
    redis.call('ZREM', QUEUE, id)
  end
end

local function forget(id)
  redis.call('ZREM', QUEUE, id)
  redis.call('HDEL', ITEMS, id)
  redis.call('HDEL', PRIORITIES, id)
  redis.call('HDEL', TAGS, id)
end

local function reap(now)
  local expired = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', '(' .. now, 'LIMIT', 0, 200)
  for _, member in ipairs(expired) do
    redis.call('ZREM', EXPIRY, member)
    local id = string.match(member, '^([^|]*)|')
    local state = load(id)
    if state then offer(id, state, now) end
  end
end
"""
)

# ARGV: id, priority, tags, initial state json. Idempotent: an item already known is left
# as it is, so entries recovered from the pending list are registered at most once.
REGISTER: Final = (
    _COMMON
    + """
if redis.call('HSETNX', ITEMS, ARGV[1], ARGV[4]) == 0 then return 0 end
redis.call('HSET', PRIORITIES, ARGV[1], ARGV[2])
redis.call('HSET', TAGS, ARGV[1], ARGV[3])
redis.call('ZADD', QUEUE, ARGV[2], ARGV[1])
return 1
"""
)

# ARGV: group, reviewer, now ms, lease ms, wanted tag ('' for any), scan window.
# Walks the queue from the top for an item this reviewer neither judged nor holds (and that
# carries the tag); looks at the `window` highest items at most.
CLAIM: Final = (
    _COMMON
    + """
local group, reviewer, now, lease_ms, wanted = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5]
local window = tonumber(ARGV[6])
reap(now)

local function tagged(id)
  if wanted == '' then return true end
  local tags = redis.call('HGET', TAGS, id) or ''
  return string.find(tags, '|' .. wanted .. '|', 1, true) ~= nil
end

local start, seen = 0, 0
while seen < window do
  local ids = redis.call('ZREVRANGE', QUEUE, start, start + 99)
  if #ids == 0 then return false end
  local kept = #ids
  for _, id in ipairs(ids) do
    seen = seen + 1
    local state = tagged(id) and load(id)
    if state == nil then
      -- Queued by an older version without a state: the pending-list recovery registers it.
      redis.call('ZREM', QUEUE, id)
      kept = kept - 1
    elseif state and state.votes[reviewer] == nil and not holds(state, reviewer, now) then
      if #redis.call('XRANGE', STREAM, id, id) == 0 then
        forget(id)  -- trimmed from the stream: nothing left to review
        redis.call('XACK', STREAM, group, id)
        kept = kept - 1
      else
        state.held[reviewer] = {now, now + lease_ms}
        redis.call('ZADD', EXPIRY, now + lease_ms, id .. '|' .. reviewer)
        save(id, state)
        offer(id, state, now)
        return id
      end
    end
  end
  start = start + kept
end
return false
"""
)

# ARGV: group, reviewer, id, now ms, verdict json, label, route.
# Returns {outcome} or, for the verdict that completes the item, {'finished', label, tied}.
# The final label is the most common one; a tie goes to the most severe of the tied labels
# (`final_label` in review/agreement.py is the same rule for the export).
VERDICT: Final = (
    _COMMON
    + """
local SEVERITY = {regression = 3, acceptable = 2, improvement = 1}
local group, reviewer, id, now, label = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[6]

local state = load(id)
if not state then
  if #redis.call('XPENDING', STREAM, group, id, id, 1) == 0 then return {'done'} end
  return {'not_held'}
end
if state.votes[reviewer] ~= nil then return {'judged'} end
local lease = state.held[reviewer]
if not lease then return {'not_held'} end
if now > lease[2] then return {'expired'} end

state.held[reviewer] = nil
redis.call('ZREM', EXPIRY, id .. '|' .. reviewer)
state.votes[reviewer] = label
redis.call('HINCRBY', STATS, STAT_LABEL .. label, 1)
redis.call('HINCRBY', STATS, STAT_ROUTE .. ARGV[7] .. ':' .. label, 1)
redis.call('HINCRBY', AGREEMENT, AGREEMENT_REVIEWER .. reviewer .. ':verdicts', 1)
redis.call('LPUSH', DURATIONS, now - lease[1])
redis.call('LTRIM', DURATIONS, 0, 999)

if size(state.votes) < state.need then
  redis.call('XADD', VERDICTS, '*', DATA, ARGV[5])
  save(id, state)
  offer(id, state, now)
  return {'ok'}
end

local counts, most = {}, 0
for _, vote in pairs(state.votes) do
  counts[vote] = (counts[vote] or 0) + 1
  if counts[vote] > most then most = counts[vote] end
end
local final, leaders = nil, 0
for name, n in pairs(counts) do
  if n == most then
    leaders = leaders + 1
    if final == nil or SEVERITY[name] > SEVERITY[final] then final = name end
  end
end
local tied = leaders > 1 and '1' or '0'

redis.call('XADD', VERDICTS, '*', DATA, ARGV[5], VERDICT_FINAL, final, VERDICT_TIED, tied)
redis.call('XACK', STREAM, group, id)
for holder in pairs(state.held) do redis.call('ZREM', EXPIRY, id .. '|' .. holder) end
forget(id)
redis.call('HINCRBY', STATS, STAT_FINAL .. final, 1)
if tied == '1' then redis.call('HINCRBY', STATS, STAT_FINAL_TIED, 1) end

-- Sufficient statistics for kappa over items with n verdicts (review/agreement.py).
local n = size(state.votes)
local squares = 0
for name, c in pairs(counts) do
  squares = squares + c * c
  redis.call('HINCRBY', AGREEMENT, AGREEMENT_LABELS .. n .. ':' .. name, c)
end
redis.call('HINCRBY', AGREEMENT, AGREEMENT_ITEMS .. n, 1)
redis.call('HINCRBY', AGREEMENT, AGREEMENT_SQUARES .. n, squares)
if n == 2 then
  local names = {}
  for name in pairs(state.votes) do table.insert(names, name) end
  table.sort(names)
  local pair = state.votes[names[1]] .. ':' .. state.votes[names[2]]
  redis.call('HINCRBY', AGREEMENT, AGREEMENT_PAIR .. pair, 1)
end
for name, vote in pairs(state.votes) do
  redis.call('HINCRBY', AGREEMENT, AGREEMENT_REVIEWER .. name .. ':finished', 1)
  if vote == final then
    redis.call('HINCRBY', AGREEMENT, AGREEMENT_REVIEWER .. name .. ':with_majority', 1)
  end
end
return {'finished', final, tied}
"""
)

# ARGV: group, reviewer, id, now ms.
RELEASE: Final = (
    _COMMON
    + """
local reviewer, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local state = load(id)
if not state or state.held[reviewer] == nil then return 'not_held' end
state.held[reviewer] = nil
redis.call('ZREM', EXPIRY, id .. '|' .. reviewer)
save(id, state)
offer(id, state, now)
return 'ok'
"""
)

# ARGV: group, consumer, min idle ms, start id. One page of entries pending longer than the
# idle time (XAUTOCLAIM resets their idle time) that the queue does not know: the next start
# id, then their ids.
RECOVER: Final = (
    _COMMON
    + """
local reply = redis.call('XAUTOCLAIM', STREAM, ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', 500, 'JUSTID')
local out = {reply[1]}
for _, id in ipairs(reply[2]) do
  if redis.call('HEXISTS', ITEMS, id) == 0 then table.insert(out, id) end
end
return out
"""
)

# ARGV: now ms. Puts items whose leases ran out back in the queue (stats call it too).
REAP: Final = (
    _COMMON
    + """
reap(tonumber(ARGV[1]))
return 'ok'
"""
)
