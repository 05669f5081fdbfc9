'use strict';
// The Node side of the end-to-end benchmark: socket.io 4 sharing
// express-session 1.19.0 + connect-redis 9 sessions through
// `io.engine.use(session)`, the way socket.io's documentation does it.
// A connection without a logged-in session is refused, as the Rust chat's
// `SessionMiddleware::required` does.
//
// Environment: REDIS_URL, SECRET, PORT. Prints "listening on PORT" when ready.

const http = require('http');
const express = require('express');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');
const { Server } = require('socket.io');

async function main() {
  const { REDIS_URL, SECRET, PORT } = process.env;
  if (!REDIS_URL || !SECRET || !PORT) throw new Error('set REDIS_URL, SECRET and PORT');
  const client = createClient({ url: REDIS_URL });
  client.on('error', (e) => console.error('redis client:', e.message));
  await client.connect();

  const sessionMiddleware = session({
    store: new RedisStore({ client, prefix: 'sess:' }),
    secret: SECRET,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 24 * 3600 * 1000, sameSite: 'lax' }
  });
  const app = express();
  app.use(sessionMiddleware);
  app.use(express.urlencoded({ extended: false }));
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = String(req.body.name || 'bench');
      res.redirect(303, '/');
    });
  });

  const server = http.createServer(app);
  const io = new Server(server);
  io.engine.use(sessionMiddleware);
  const requireSession = (socket, next) => {
    const s = socket.request.session;
    if (s && s.user) return next();
    next(new Error('no session'));
  };
  for (const ns of ['/', '/chat']) {
    io.of(ns).use(requireSession);
    io.of(ns).on('connection', (socket) => socket.join('lobby'));
  }
  server.listen(Number(PORT), '127.0.0.1', () => console.log('listening on ' + PORT));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
