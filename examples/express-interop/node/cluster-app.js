'use strict'
// app.js on a Redis Cluster: stock express-session 1.19.0 with connect-redis
// 9 on node-redis's cluster client (createCluster), sharing the cluster and
// the secret with Rust servers on RedisStore::cluster_builder. Same routes,
// same records (connect-redis keys sess:<id>, each on its slot's primary).
//
// Environment: REDIS_CLUSTER (seed node URLs, comma-separated: any few
// nodes), SECRET, PORT (0: any free port). Prints
// "express listening on http://127.0.0.1:PORT" when ready.

const express = require('express')
const session = require('express-session')
const { RedisStore } = require('connect-redis')
const { createCluster } = require('redis')
const { casUpdate } = require('./cas')

const PREFIX = 'sess:'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(Number(ms) || 0, 5000)))

async function main () {
  const seeds = (process.env.REDIS_CLUSTER || '').split(',').filter(Boolean)
  const secret = process.env.SECRET
  if (seeds.length === 0 || !secret) throw new Error('set REDIS_CLUSTER and SECRET')
  // Password and TLS options, if any, go in `defaults`.
  const client = createCluster({
    rootNodes: seeds.map((url) => ({ url })),
    defaults: { socket: { connectTimeout: 1000 } }
  })
  client.on('error', (e) => console.error('redis cluster:', e.message))
  await client.connect()

  const app = express()
  app.use(session({
    store: new RedisStore({ client, prefix: PREFIX }),
    secret: secret.split(','),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 3600 * 1000 }
  }))

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

  app.post('/set', async (req, res) => {
    if (!req.session.user) return res.status(401).json({ error: 'not logged in' })
    await sleep(req.query.delay_ms)
    req.session[req.query.key] = JSON.parse(req.query.value)
    res.json({ ok: true })
  })

  // The compare-and-set script, routed by its key to the key's primary.
  app.post('/set-cas', async (req, res, next) => {
    try {
      if (!req.session.user) return res.status(401).json({ error: 'not logged in' })
      const { key, value } = req.query
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
