'use strict'
// The interop assertions: real HTTP requests to the Express app
// (express-session + connect-redis) and to the Rust interop-server, which
// share one redis-server and one secret. Started by ../run.sh.
//
// Environment: EXPRESS_URL, RUST_URL, REDIS_URL, K (default 20).
// Ends with "N passed, M failed"; exits 1 if any failed.

const http = require('node:http')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const assert = require('node:assert/strict')
const { createClient } = require('redis')
const { RedisStore } = require('connect-redis')
const { COMPARE_AND_SET_LUA } = require('./cas')

const EXPRESS = process.env.EXPRESS_URL
const RUST = process.env.RUST_URL
const K = Number(process.env.K || 20)
const EXPRESS_ORIGIN = EXPRESS && new URL(EXPRESS).origin

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// One HTTP request, no keep-alive, no cookie jar: the tests pass cookies
// by hand so that both servers see exactly the same header.
function request (method, url, { cookie, origin } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {}
    if (cookie) headers.cookie = cookie
    if (origin) headers.origin = origin
    const req = http.request(url, { method, headers, agent: false, timeout: 10000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => {
        let json = null
        try { json = JSON.parse(body) } catch { json = body }
        resolve({ status: res.statusCode, headers: res.headers, body: json })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in 10 s`)))
    req.on('error', reject)
    req.end()
  })
}

const q = (params) => new URLSearchParams(params).toString()
const express = (method, path, opts) => request(method, EXPRESS + path, opts)
// The Rust side is called as a page served by the Express app would call
// it: with that origin (the server's allowlist).
const rust = (method, path, opts = {}) =>
  request(method, RUST + path, { origin: EXPRESS_ORIGIN, ...opts })

async function login (user = 'ada') {
  const r = await express('POST', `/login?${q({ user })}`)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  const set = [].concat(r.headers['set-cookie'] || [])
  const pair = set.map((c) => c.split(';')[0]).find((c) => c.startsWith('connect.sid='))
  assert.ok(pair, 'Express sent the session cookie')
  const value = decodeURIComponent(pair.slice('connect.sid='.length))
  assert.ok(value.startsWith('s:'), 'signed cookie')
  const sid = value.slice(2, value.lastIndexOf('.'))
  return { cookie: pair, sid, key: 'sess:' + sid }
}

let redis
const record = async (key) => {
  const raw = await redis.get(key)
  return raw == null ? null : JSON.parse(raw)
}

const tests = []
const test = (name, fn) => tests.push({ name, fn })

test('login_on_express_is_seen_by_rust', async () => {
  const s = await login('ada')
  const r = await rust('GET', '/whoami', { cookie: s.cookie })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.data.user, 'ada')
  const e = await express('GET', '/whoami', { cookie: s.cookie })
  assert.deepEqual(r.body.data, e.body.data, 'both sides see the same session data')
})

test('rust_save_is_seen_by_an_express_route', async () => {
  const s = await login('grace')
  const r = await rust('POST', `/set?${q({ key: 'color', value: '"blue"' })}`, { cookie: s.cookie })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  const e = await express('GET', '/whoami', { cookie: s.cookie })
  assert.equal(e.status, 200)
  assert.equal(e.body.data.color, 'blue')
  assert.equal(e.body.data.user, 'grace')
})

test('r24_express_logout_makes_rust_reject_and_a_later_rust_save_does_not_resurrect', async () => {
  const s = await login('linus')
  // A Rust request loads the session, then takes 1.5 s before saving
  // (express-session #632: a long request's final save undid a logout).
  // Express logs out 0.5 s into it.
  const slow = rust('POST', `/set?${q({ key: 'late', value: '1', delay_ms: 1500 })}`, { cookie: s.cookie })
  await sleep(500)
  const out = await express('POST', '/logout', { cookie: s.cookie })
  assert.equal(out.status, 200)
  const late = await slow
  assert.equal(late.status, 410, `the save after logout: ${JSON.stringify(late.body)}`)
  assert.equal(late.body.error, 'gone')
  assert.equal(await redis.exists(s.key), 0, 'the session stays destroyed')
  const who = await rust('GET', '/whoami', { cookie: s.cookie })
  assert.equal(who.status, 401)
  assert.equal(who.body.error, 'session_not_found')
  const again = await rust('POST', `/set?${q({ key: 'x', value: '1' })}`, { cookie: s.cookie })
  assert.equal(again.status, 401, 'a new Rust request with that cookie has no session')
  assert.equal(await redis.exists(s.key), 0)
  assert.equal((await express('GET', '/whoami', { cookie: s.cookie })).status, 401)
})

test(`r25_k_concurrent_rust_increments_end_at_exactly_k (K=${K})`, async () => {
  const s = await login('ken')
  const rs = await Promise.all(
    Array.from({ length: K }, () => rust('POST', '/incr?key=n', { cookie: s.cookie }))
  )
  for (const r of rs) assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal((await record(s.key)).n, K)
  const e = await express('GET', '/whoami', { cookie: s.cookie })
  assert.equal(e.body.data.n, K)
})

// Rust increments `a` (2 workers, spread over the run) while Express sets
// `b` = 1..K in sequential requests, each doing `work` ms of work between
// express-session's load and save.
async function race (s, expressRoute, work = 10) {
  const express200 = (async () => {
    for (let i = 1; i <= K; i++) {
      const r = await express('POST', `${expressRoute}?${q({ key: 'b', value: String(i), delay_ms: work })}`, { cookie: s.cookie })
      assert.equal(r.status, 200, JSON.stringify(r.body))
    }
  })()
  let issued = 0
  const worker = async () => {
    while (issued < K) {
      issued++
      const r = await rust('POST', '/incr?key=a', { cookie: s.cookie })
      assert.equal(r.status, 200, JSON.stringify(r.body))
      await sleep(15)
    }
  }
  await Promise.all([express200, worker(), worker()])
  return record(s.key)
}

for (const work of [0, 10]) {
  test(`r25_stock_express_writes_are_never_overwritten_by_rust (b ends at K; route work ${work} ms)`, async () => {
    const s = await login('edsger')
    const rec = await race(s, '/set', work)
    assert.equal(rec.b, K, 'every Express write of b survived the Rust increments')
    const a = rec.a || 0
    assert.ok(a <= K, `a=${a}`)
    console.log(`# measured: with ${work} ms of route work, stock express-session's blind saves dropped ${K - a} of ${K} Rust increments of a (a=${a})`)
  })
}

test('r25_express_cas_route_loses_nothing_on_either_side (a and b end at K)', async () => {
  const s = await login('barbara')
  const rec = await race(s, '/set-cas')
  assert.equal(rec.b, K, 'b')
  assert.equal(rec.a, K, 'a')
  assert.equal(rec.user, 'barbara')
})

test('the_key_json_bytes_and_ttl_rust_writes_equal_connect_redis', async () => {
  const s = await login('alan')
  const e = await express('POST', `/set?${q({ key: 'n', value: '1' })}`, { cookie: s.cookie })
  assert.equal(e.status, 200)
  const written = await redis.get(s.key)
  const keysBefore = (await redis.keys('*')).sort()
  // Rust changes n and changes it back: it writes the same session.
  for (const value of ['2', '1']) {
    const r = await rust('POST', `/set?${q({ key: 'n', value })}`, { cookie: s.cookie })
    assert.equal(r.status, 200, JSON.stringify(r.body))
  }
  const rustBytes = await redis.get(s.key)
  const rustTtl = await redis.ttl(s.key)
  assert.equal(rustBytes, written, 'same JSON bytes as connect-redis wrote')
  assert.deepEqual((await redis.keys('*')).sort(), keysBefore, 'same key, no other key')
  // connect-redis writing the same session now, under another prefix:
  const cmp = new RedisStore({ client: redis, prefix: 'cmp:' })
  await cmp.set(s.sid, JSON.parse(rustBytes))
  assert.equal(await redis.get('cmp:' + s.sid), rustBytes, 'connect-redis serialises it to the same bytes')
  const cmpTtl = await redis.ttl('cmp:' + s.sid)
  assert.ok(Math.abs(cmpTtl - rustTtl) <= 1, `TTL: Rust ${rustTtl} s, connect-redis ${cmpTtl} s`)
  assert.ok(rustTtl > 3500 && rustTtl <= 3600, `TTL follows cookie.expires (maxAge 1 h): ${rustTtl}`)
  await redis.del('cmp:' + s.sid)
})

test('the_cas_script_is_the_same_on_both_sides', async () => {
  const r = await rust('GET', '/cas-script')
  assert.equal(r.status, 200)
  assert.equal(r.body, COMPARE_AND_SET_LUA)
})

test('r05_a_cross_site_origin_is_rejected_by_rust', async () => {
  const s = await login('mallory-target')
  const r = await rust('GET', '/whoami', { cookie: s.cookie, origin: 'https://evil.example' })
  assert.equal(r.status, 403)
  assert.equal(r.body.error, 'origin_rejected')
})

test('r01_a_tampered_cookie_is_rejected_by_both_sides', async () => {
  const s = await login('ada')
  const last = s.cookie.at(-1)
  const tampered = s.cookie.slice(0, -1) + (last === 'A' ? 'B' : 'A')
  const r = await rust('GET', '/whoami', { cookie: tampered })
  assert.equal(r.status, 401)
  assert.equal(r.body.error, 'signature_invalid')
  assert.equal((await express('GET', '/whoami', { cookie: tampered })).status, 401)
})

// Last, as it wipes Redis: redis-server dies while both servers run; the
// Rust side fails closed at once, and once a new redis-server listens on the
// same port, both sides work again without being restarted.
test('r23_redis_killed_and_restarted_rust_fails_closed_then_recovers_without_restart', async () => {
  const { REDIS_PORT, REDIS_DIR, EXTRA_PIDS } = process.env
  assert.ok(REDIS_PORT && REDIS_DIR && EXTRA_PIDS, 'run by ../run.sh')
  const s = await login('rosalind')
  assert.equal((await rust('GET', '/whoami', { cookie: s.cookie })).status, 200)
  await redis.sendCommand(['SHUTDOWN', 'NOSAVE']).catch(() => {})
  let started = Date.now()
  const down = await rust('GET', '/whoami', { cookie: s.cookie })
  const toError = Date.now() - started
  assert.equal(down.status, 503, JSON.stringify(down.body))
  assert.equal(down.body.error, 'store_error')
  // R35: the client gets the reason and a hint; the address stays in the log.
  assert.doesNotMatch(down.body.message, /127\.0\.0\.1|Redis|refused/)
  assert.ok(toError < 2000, `time to error ${toError} ms`)

  started = Date.now()
  const child = spawn('redis-server', ['--port', REDIS_PORT, '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', REDIS_DIR], { stdio: 'ignore' })
  fs.appendFileSync(EXTRA_PIDS, `${child.pid}\n`) // ../run.sh stops it
  for (let i = 0; ; i++) {
    assert.ok(i < 200, 'the new redis-server answers PING within 10 s')
    try { if (await redis.ping() === 'PONG') break } catch {}
    await sleep(50)
  }
  const restarted = Date.now() - started
  // The data went with the old server (persistence off): the cookie now
  // names no session, and Rust says so instead of failing.
  started = Date.now()
  const gone = await rust('GET', '/whoami', { cookie: s.cookie })
  const firstCall = Date.now() - started
  assert.equal(gone.status, 401, JSON.stringify(gone.body))
  assert.equal(gone.body.error, 'session_not_found')
  const again = await login('rosalind')
  const who = await rust('GET', '/whoami', { cookie: again.cookie })
  assert.equal(who.status, 200, JSON.stringify(who.body))
  assert.equal(who.body.data.user, 'rosalind')
  console.log(`# measured: redis down -> Rust error in ${toError} ms; redis back after ${restarted} ms -> Rust's first call answered in ${firstCall} ms`)
})

async function main () {
  for (const [name, v] of Object.entries({ EXPRESS_URL: EXPRESS, RUST_URL: RUST, REDIS_URL: process.env.REDIS_URL })) {
    if (!v) throw new Error(`set ${name} (run ../run.sh)`)
  }
  redis = createClient({ url: process.env.REDIS_URL })
  redis.on('error', () => {}) // expected while the fault test has Redis down
  await redis.connect()
  let passed = 0
  let failed = 0
  for (const { name, fn } of tests) {
    const started = Date.now()
    try {
      await Promise.race([
        fn(),
        sleep(30000).then(() => { throw new Error('timed out after 30 s') })
      ])
      passed++
      console.log(`ok - ${name} (${Date.now() - started} ms)`)
    } catch (e) {
      failed++
      console.log(`not ok - ${name}: ${e && e.stack ? e.stack : e}`)
    }
  }
  await redis.quit()
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main().catch((e) => { console.error(e); process.exit(1) })
