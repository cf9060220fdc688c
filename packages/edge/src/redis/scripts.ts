// Lua scripts of the Redis plane, one key each (so they run on the slot's master, whole or not at
// all). They are registered with ioredis `defineCommand`: EVALSHA first, EVAL on NOSCRIPT. That
// matters after a failover: scripts are not replicated into a replica's script cache, so a
// promoted replica answers NOSCRIPT to every EVALSHA until the script is sent again.
//
// Revisions and counts cross as decimal strings. Lua numbers are doubles, so revisions are
// compared as canonical decimal strings (length, then text), and counters are read back with
// HMGET (a bulk string) rather than taken from HINCRBY's integer reply.

import { createHash } from "node:crypto";

const LOWER = `
local function lower(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function stored_revision(key)
  local cur = redis.call('HGET', key, 'revision')
  if cur and not string.match(cur, '^%d+$') then
    return nil, redis.error_reply('CORRUPT revision ' .. cur .. ' in ' .. key)
  end
  return cur
end
`;

/**
 * KEYS[1] definition hash; ARGV[1] revision, ARGV[2..] field, value, ...
 * Replaces the hash only when the stored revision (of a definition or a tombstone) is lower.
 * Returns {1|0, stored revision}.
 */
const MIRROR = `${LOWER}
local rev = ARGV[1]
local cur, err = stored_revision(KEYS[1])
if err then return err end
if cur and not lower(cur, rev) then return {0, cur} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'revision', rev, unpack(ARGV, 2))
return {1, rev}
`;

/**
 * KEYS[1] definition hash; ARGV[1] revision, ARGV[2] tombstone TTL in ms.
 * When the stored revision is not higher, leaves a tombstone at this revision (so a stale mirror
 * cannot bring the definition back) that expires after the TTL. Returns {1|0, stored revision}.
 */
const DELETE = `${LOWER}
local rev = ARGV[1]
local cur, err = stored_revision(KEYS[1])
if err then return err end
if cur and lower(rev, cur) then return {0, cur} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'revision', rev, 'tombstone', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, rev}
`;

/**
 * KEYS[1] edges hash; ARGV[1] edge id, ARGV[2] generated delta, ARGV[3] wasted delta,
 * ARGV[4] now in ms, ARGV[5] edges max.
 * Adds both deltas or neither, moves `seen` forward only, and returns {generated, wasted, seen}.
 */
const REPORT = `
local key, e = KEYS[1], ARGV[1]
local g, w, s = e .. ':generated', e .. ':wasted', e .. ':seen'
if redis.call('HEXISTS', key, s) == 0 and redis.call('HLEN', key) >= 3 * tonumber(ARGV[5]) then
  return redis.error_reply('LIMIT ' .. key .. ' already counts ' .. ARGV[5] .. ' edges')
end
local function incr(field, delta)
  local r = redis.pcall('HINCRBY', key, field, delta)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'overflow') then
      return redis.error_reply('LIMIT ' .. field .. ' in ' .. key .. ' would pass the int64 range')
    end
    return r
  end
  return nil
end
local err = incr(g, ARGV[2])
if err then return err end
err = incr(w, ARGV[3])
if err then
  if ARGV[2] ~= '0' then redis.call('HINCRBY', key, g, '-' .. ARGV[2]) end
  return err
end
local seen = redis.call('HGET', key, s)
if not seen or tonumber(seen) < tonumber(ARGV[4]) then redis.call('HSET', key, s, ARGV[4]) end
return redis.call('HMGET', key, g, w, s)
`;

/**
 * KEYS[1] guard hash; ARGV[1] ledger identity ('' for none), ARGV[2] issued mark (decimal).
 * Keeps the first identity written and the highest mark. Returns {identity or '', mark}.
 */
const GUARD = `${LOWER}
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'identity', 'mark')
local id, mark = cur[1], cur[2]
if mark and not string.match(mark, '^%d+$') then
  return redis.error_reply('CORRUPT mark ' .. mark .. ' in ' .. key)
end
if (not id or id == '') and ARGV[1] ~= '' then
  redis.call('HSET', key, 'identity', ARGV[1])
  id = ARGV[1]
end
if not mark or lower(mark, ARGV[2]) then
  redis.call('HSET', key, 'mark', ARGV[2])
  mark = ARGV[2]
end
return {id or '', mark}
`;

export interface PlaneScript {
  /** The ioredis command name it is defined under. */
  readonly command: string;
  readonly lua: string;
  readonly sha1: string;
}

function script(command: string, lua: string): PlaneScript {
  return { command, lua, sha1: createHash("sha1").update(lua).digest("hex") };
}

export const PLANE_SCRIPTS = {
  mirror: script("dispenserPlaneMirrorV1", MIRROR),
  delete: script("dispenserPlaneDeleteV1", DELETE),
  report: script("dispenserPlaneReportV1", REPORT),
  guard: script("dispenserPlaneGuardV1", GUARD),
} as const satisfies Record<string, PlaneScript>;
