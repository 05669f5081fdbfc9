'use strict'
// The Express side of the interop suite: stock express-session 1.19.0 with
// connect-redis 9, sharing Redis and the secret with the Rust interop-server
// and the chat. On one Redis (REDIS_URL, node-redis's createClient) or on a
// Redis Cluster (REDIS_CLUSTER: seed node URLs, comma-separated, any few
// nodes; node-redis's createCluster, each sess:<id> on its slot's primary,
// shared with Rust servers on RedisStore::cluster_builder).
//
// Environment: REDIS_URL or REDIS_CLUSTER, SECRET, PORT (0: any free port).
// Prints
// "express listening on http://127.0.0.1:PORT" when ready.

const express = require('express')
const session = require('express-session')
const { RedisStore } = require('connect-redis')
const { createClient, createCluster } = require('redis')
const { casUpdate } = require('./cas')

const PREFIX = 'sess:'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(Number(ms) || 0, 5000)))

async function main () {
  const redisUrl = process.env.REDIS_URL
  const seeds = (process.env.REDIS_CLUSTER || '').split(',').filter(Boolean)
  const secret = process.env.SECRET
  if ((!redisUrl && seeds.length === 0) || !secret) throw new Error('set REDIS_URL (or REDIS_CLUSTER) and SECRET')
  const client = seeds.length > 0
    // Password and TLS options, if any, go in `defaults`.
    ? createCluster({ rootNodes: seeds.map((url) => ({ url })), defaults: { socket: { connectTimeout: 1000 } } })
    : createClient({ url: redisUrl })
  client.on('error', (e) => console.error('redis:', e.message))
  await client.connect()

  const app = express()
  app.use(session({
    store: new RedisStore({ client, prefix: PREFIX }),
    secret: secret.split(','),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 3600 * 1000 }
  }))

  // Login: a new id (regenerate), then the user.
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = String(req.query.user || 'ada')
      res.json({ user: req.session.user })
    })
  })

  app.get('/whoami', (req, res) => {
    if (!req.session.user) return res.status(401).json({ error: 'not logged in' })
    const { cookie, ...data } = req.session
    res.json({ data })
  })

  // Stock express-session: change one key; express-session then saves the
  // whole session it loaded (connect-redis SET, a blind overwrite).
  // `delay_ms` stands for the work a real route does (a database call)
  // between express-session's load and its save.
  app.post('/set', async (req, res) => {
    if (!req.session.user) return res.status(401).json({ error: 'not logged in' })
    await sleep(req.query.delay_ms)
    req.session[req.query.key] = JSON.parse(req.query.value)
    res.json({ ok: true })
  })

  // The remedy: change one key with the compare-and-set script (on a
  // cluster, routed by its key to the key's primary), leaving req.session
  // unchanged so express-session does not save it (resave: false); keys
  // written meanwhile by the Rust side are kept.
  app.post('/set-cas', async (req, res, next) => {
    try {
      if (!req.session.user) return res.status(401).json({ error: 'not logged in' })
      const { key, value } = req.query
      await sleep(req.query.delay_ms)
      const r = await casUpdate(client, PREFIX + req.sessionID, (s) => { s[key] = JSON.parse(value) })
      const status = { saved: 200, gone: 410, conflict: 409 }[r.outcome]
      res.status(status).json({ outcome: r.outcome, attempts: r.attempts })
    } catch (e) { next(e) }
  })

  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err)
      res.json({ ok: true })
    })
  })

  const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    console.log(`express listening on http://127.0.0.1:${server.address().port}`)
  })
  const stop = () => server.close(() => client.close().finally(() => process.exit(0)))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((e) => { console.error(e); process.exit(1) })
