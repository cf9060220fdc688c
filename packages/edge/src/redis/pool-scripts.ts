// Lua scripts of a DC's reserve pool (see pool.ts): one key each, so each runs on the slot's
// master whole or not at all. Sizes and offsets are Lua numbers, exact below 2^53 (a window is at
// most 2^52 ids); window starts cross as decimal strings, compared by (length, text). Numbers are
// written back with string.format('%d'), never tostring (which gives "1e+15").

import { createHash } from "node:crypto";

const COMMON = `
local function lower(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function d(x) return string.format('%d', x) end
-- This server process: a pool written by another one (a promoted replica, a restart from disk)
-- may have lost confirmed carves (a replica that missed them, an AOF or RDB behind them).
local function runid() return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') end
-- Ids not carved yet in the pool at key (at most 16 windows to read): what deleting it burns.
local function leftOf(key)
  local h = redis.call('HMGET', key, 'windows', 'head', 'used')
  local windows, head, used = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
  if not windows or not head or not used then return 0 end
  local left = 0
  for k = head, windows - 1 do
    local w = redis.call('HGET', key, 'w' .. d(k))
    left = left + tonumber(string.match(w or '', '^%d+ %d+ (%d+) ') or '0')
  end
  if head < windows then left = left - used end
  return math.max(left, 0)
end
-- a - b for decimal strings with a >= b; the caller knows the difference is below 2^53.
local function minus(a, b)
  local out, borrow = 0, 0
  local scale = 1
  for i = 0, #a - 1 do
    local da = string.byte(a, #a - i) - 48
    local db = (i < #b) and (string.byte(b, #b - i) - 48) or 0
    local v = da - db - borrow
    if v < 0 then v = v + 10; borrow = 1 else borrow = 0 end
    out = out + v * scale
    scale = scale * 10
    if scale > 1e16 then break end
  end
  return out
end
`;

/**
 * KEYS[1] pool; ARGV[1] start, ARGV[2] end (decimal), ARGV[3] size, ARGV[4] fence term,
 * ARGV[5] fence index, ARGV[6] generation for a new pool, ARGV[7] most live windows.
 * Appends a window above every window this pool (generation) ever held. A pool written by another
 * server process is deleted first (see CARVE): `dropped` is what it had left.
 * Returns {'OK', gen, k, dropped} | {'BELOW', gen, top} | {'FULL', gen, top}.
 */
const ADD = `${COMMON}
local key = KEYS[1]
local rid = runid()
local dropped = 0
if redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'runid') ~= rid then
  dropped = leftOf(key)
  redis.call('DEL', key)
end
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'gen', ARGV[6], 'carves', '0', 'windows', '0', 'head', '0', 'used', '0', 'top', '0', 'carved', '0', 'runid', rid)
end
local h = redis.call('HMGET', key, 'gen', 'windows', 'head', 'top')
local gen, windows, head, top = h[1], tonumber(h[2]), tonumber(h[3]), h[4]
if not gen or not windows or not head or not top then
  return redis.error_reply('CORRUPT pool ' .. key)
end
if lower(ARGV[1], top) then return {'BELOW', gen, top} end
if windows - head >= tonumber(ARGV[7]) then return {'FULL', gen, top} end
redis.call('HSET', key, 'w' .. d(windows), ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5],
  'windows', d(windows + 1), 'top', ARGV[2])
return {'OK', gen, d(windows), d(dropped)}
`;

/**
 * KEYS[1] pool; ARGV[1] most ids, ARGV[2] generation the caller saw ('' for none), ARGV[3] the
 * carve count it saw, ARGV[4] the lowest counter value the caller may use (its own order), ARGV[5]
 * '1' to skip the ids below it (burnt for every caller), '0' to carve nothing when the next ids
 * lie below it. Carves up to ARGV[1] ids from the oldest window that has any. Returns {'OK', gen,
 * carves, window start, offset, count, fence term, fence index, left, carved, skipped}
 * | {'EMPTY', gen, carves, '0', carved, skipped} | {'BELOW_FLOOR', gen, carves} | {'MISSING'}
 * | {'MASTER_CHANGED', gen, dropped}: the pool was written by another server process (a failover,
 * a restart from disk), which may have lost confirmed carves: it is deleted, burnt
 * | {'ROLLED_BACK', gen, carves, dropped}: a pool behind what the caller saw (restored from an old
 * copy) is deleted, so that only fresh windows fill it again. `left` and `carved` (ids ever
 * carved) are for rates and runway; `dropped` is what a deleted pool had left.
 */
const CARVE = `${COMMON}
local key = KEYS[1]
local h = redis.call('HMGET', key, 'gen', 'carves', 'windows', 'head', 'used', 'carved', 'runid')
if not h[1] then return {'MISSING'} end
if h[7] ~= runid() then
  local dropped = leftOf(key)
  redis.call('DEL', key)
  return {'MASTER_CHANGED', h[1], d(dropped)}
end
local gen, carves, windows, head, used = h[1], tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), tonumber(h[5])
local carved = tonumber(h[6] or '0')
if not carves or not windows or not head or not used or not carved then
  return redis.error_reply('CORRUPT pool ' .. key)
end
if gen == ARGV[2] and carves < tonumber(ARGV[3]) then
  local dropped = leftOf(key)
  redis.call('DEL', key)
  return {'ROLLED_BACK', gen, d(carves), d(dropped)}
end
local floor = ARGV[4]
local skipped = 0
local function parse(k)
  local w = redis.call('HGET', key, 'w' .. d(k))
  local start, wend, size, fterm, findex = string.match(w or '', '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
  if not start then return nil end
  return start, wend, tonumber(size), fterm, findex
end
while head < windows do
  local start, wend, size, fterm, findex = parse(head)
  if not start then return redis.error_reply('CORRUPT window ' .. d(head) .. ' of ' .. key) end
  local at = used
  if not lower(floor, wend) then at = size
  elseif lower(start, floor) then at = math.max(used, minus(floor, start)) end
  if at > used then
    if ARGV[5] ~= '1' then
      -- Windows passed over above are gone: the position moves with them.
      redis.call('HSET', key, 'head', d(head), 'used', d(used))
      return {'BELOW_FLOOR', gen, d(carves)}
    end
    skipped = skipped + at - used
    used = at
  end
  if used < size then
    local take = math.min(tonumber(ARGV[1]), size - used)
    carves = carves + 1
    carved = carved + take
    redis.call('HSET', key, 'used', d(used + take), 'carves', d(carves), 'head', d(head), 'carved', d(carved))
    local left = size - used - take
    for k = head + 1, windows - 1 do
      local _, _, s2 = parse(k)
      left = left + (s2 or 0)
    end
    return {'OK', gen, d(carves), start, d(used), d(take), fterm, findex, d(left), d(carved), d(skipped)}
  end
  redis.call('HDEL', key, 'w' .. d(head))
  head = head + 1
  used = 0
end
redis.call('HSET', key, 'head', d(head), 'used', '0')
return {'EMPTY', gen, d(carves), '0', d(carved), d(skipped)}
`;

export interface PoolScript {
  readonly lua: string;
  readonly sha1: string;
}

function script(lua: string): PoolScript {
  return { lua, sha1: createHash("sha1").update(lua).digest("hex") };
}

export const POOL_SCRIPTS = { add: script(ADD), carve: script(CARVE) } as const;
