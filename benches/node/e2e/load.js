'use strict';
// Load generator for the end-to-end benchmark: logs in once over HTTP,
// then opens socket.io connections (websocket transport, the session
// cookie in the upgrade request) and closes each once it is connected.
// `--client raw` (the default) speaks the Engine.IO 4 / Socket.IO 5
// handshake itself over `ws` (open packet `0{...}`, then `40` to the main
// namespace, answered by `40{"sid":...}` or `44{...}` when refused; pings
// `2` are answered `3`, as every client does), so the
// generator stays cheap next to the servers it measures; `--client
// socket.io` uses socket.io-client instead.
// Bounded: at most --count connections and --timeout seconds in all;
// loopback only.
//
//   node load.js --url http://127.0.0.1:PORT [--count 500] [--concurrency 1] [--timeout 60] [--client raw|socket.io]
//
// Prints one JSON line: {"url":...,"count":N,"concurrency":C,"ok":N,"failed":N,"seconds":S,"per_second":R}

const { io } = require('socket.io-client');
const WebSocket = require('ws');

function parseArgs(argv) {
  const o = { url: null, count: 500, concurrency: 1, timeout: 60, client: 'raw' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(url|count|concurrency|timeout|client)$/.exec(argv[i]);
    if (!m) throw new Error('unknown argument ' + JSON.stringify(argv[i]));
    const v = argv[++i];
    if (m[1] === 'url') o.url = v;
    else if (m[1] === 'client') {
      if (v !== 'raw' && v !== 'socket.io') throw new Error('--client is raw or socket.io');
      o.client = v;
    }
    else if (/^\d+$/.test(v || '') && Number(v) > 0) o[m[1]] = Number(v);
    else throw new Error('--' + m[1] + ' needs a positive whole number');
  }
  if (!o.url || !/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(o.url)) {
    throw new Error('--url must be http://127.0.0.1:PORT (loopback only)');
  }
  return o;
}

async function login(url) {
  const res = await fetch(url + '/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'name=bench',
    redirect: 'manual'
  });
  const set = res.headers.get('set-cookie');
  const m = set && /(?:^|,\s*)(connect\.sid=[^;]+)/.exec(set);
  if (!m) throw new Error(url + ' /login set no connect.sid cookie (status ' + res.status + ')');
  return m[1];
}

function connectRaw(url, cookie) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket', {
      headers: { cookie }
    });
    const timer = setTimeout(() => finish(false), 5000);
    let settled = false;
    function finish(ok) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      resolve(ok);
    }
    ws.on('message', (data) => {
      const m = data.toString();
      if (m.startsWith('0')) ws.send('40');
      else if (m === '2') ws.send('3'); // answer pings, as every client does
      else if (m.startsWith('40')) finish(true);
      else if (m.startsWith('44')) finish(false);
    });
    ws.on('error', () => finish(false));
    ws.on('close', () => finish(false));
  });
}

function connectOnce(url, cookie) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ['websocket'],
      extraHeaders: { cookie },
      forceNew: true,
      reconnection: false,
      timeout: 5000
    });
    const done = (ok) => {
      socket.removeAllListeners();
      socket.disconnect();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('connect_error', () => done(false));
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const cookie = await login(o.url);
  const connect = o.client === 'raw' ? connectRaw : connectOnce;
  // Warm-up: a few connections, not counted.
  for (let i = 0; i < 20; i++) {
    if (!(await connect(o.url, cookie))) throw new Error('warm-up connection refused');
  }
  const deadline = Date.now() + o.timeout * 1000;
  let started = 0;
  let ok = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (started < o.count && Date.now() < deadline) {
      started++;
      if (await connect(o.url, cookie)) ok++;
      else failed++;
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({
    url: o.url, client: o.client, count: o.count, concurrency: o.concurrency, ok, failed,
    seconds: Math.round(seconds * 1000) / 1000,
    per_second: Math.round((ok / seconds) * 10) / 10
  }));
  if (failed > 0 || ok < o.count) process.exitCode = 1;
}

main().catch((e) => {
  console.error('load.js: ' + e.message);
  process.exit(2);
});
