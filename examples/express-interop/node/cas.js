'use strict'
// Compare-and-set saves for Express routes: the same Lua script that the
// Rust RedisStore runs (session_sockets::redis::COMPARE_AND_SET_LUA), so a
// route can change one key of the session without overwriting keys that a
// socket server wrote meanwhile. Stock express-session saves the whole
// session it loaded (a blind SET), which can drop such writes.

const COMPARE_AND_SET_LUA = `local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
if cur ~= ARGV[1] then return {1, cur} end
if ARGV[4] then redis.call('PUBLISH', ARGV[4], KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return {2}
`

// connect-redis's TTL rule: seconds until cookie.expires, rounded up; the
// store's default TTL (86400 s) for a browser-session cookie.
function ttlOf (sess, defaultTtl = 86400) {
  if (sess && sess.cookie && sess.cookie.expires) {
    return Math.ceil((Number(new Date(sess.cookie.expires)) - Date.now()) / 1000)
  }
  return defaultTtl
}

// Applies `mutate` to the stored session at `key` and writes it back only
// if nobody changed the record in between; on a conflict, re-reads and
// re-applies. Never re-creates a destroyed session.
// Resolves to { outcome: 'saved' | 'gone' | 'conflict', session, attempts }.
async function casUpdate (client, key, mutate, maxAttempts = 200) {
  let current = await client.get(key)
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (current == null) return { outcome: 'gone', attempts: attempt }
    const sess = JSON.parse(current)
    mutate(sess)
    const ttl = ttlOf(sess)
    if (ttl <= 0) {
      await client.del(key)
      return { outcome: 'gone', attempts: attempt }
    }
    const next = JSON.stringify(sess)
    const [code, theirs] = await client.eval(COMPARE_AND_SET_LUA, {
      keys: [key],
      arguments: [current, next, String(ttl)]
    })
    if (code === 2) return { outcome: 'saved', session: sess, attempts: attempt }
    if (code === 0) return { outcome: 'gone', attempts: attempt }
    current = theirs
  }
  return { outcome: 'conflict', attempts: maxAttempts }
}

module.exports = { COMPARE_AND_SET_LUA, casUpdate, ttlOf }
