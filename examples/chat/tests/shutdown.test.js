// A clean stop (R38), with real processes: the chat on a private
// redis-server, 8 sockets of one session sending bursts of `incr`, then
// SIGTERM. The chat exits 0 within 5 s; every increment it acknowledged is
// in the store, and none is in the store without its acknowledgement (or
// an error) having reached the client. Each socket is told why it is
// disconnected. Usage: node tests/shutdown.test.js <chat binary>
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { io } = require("socket.io-client");
const { connected, sleep, startChat, login, runner, freePort, startRedis } = require("./harness");

const bin = process.argv[2];
if (!bin) {
  console.error("usage: node tests/shutdown.test.js <path to the chat binary>");
  process.exit(2);
}
const SECRET = "shutdown test secret";
const SOCKETS = 8;
const BURST = 10;

/** GET `key`: the bulk string, or null. */
function redisGet(port, key) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1");
    let out = Buffer.alloc(0);
    c.on("data", (d) => {
      out = Buffer.concat([out, d]);
      const head = out.indexOf("\r\n");
      if (head < 0) return;
      const len = Number(out.subarray(1, head).toString());
      if (len < 0) { c.destroy(); return resolve(null); }
      if (out.length >= head + 2 + len + 2) { c.destroy(); resolve(out.subarray(head + 2, head + 2 + len).toString()); }
    });
    c.on("error", reject);
    c.write(`*2\r\n$3\r\nGET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
  });
}

const sidOf = (cookie) => decodeURIComponent(cookie.split("=")[1]).slice(2).split(".").slice(0, -1).join(".");

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-shutdown-"));
  const redisPort = await freePort();
  const redis = await startRedis(redisPort, dir);
  const t = runner();

  for (const transports of [["websocket"], ["polling"]]) {
    t.test(`r38 SIGTERM during bursts of incr over ${transports}: acked = stored, exit 0 within 5 s`, async () => {
      const chat = await startChat(bin, ["--secret", SECRET, "--redis", `redis://127.0.0.1:${redisPort}/`]);
      const cookie = await login(chat.url, "stopper");
      const sockets = [];
      for (let i = 0; i < SOCKETS; i++) {
        sockets.push(io(chat.url + (i % 2 ? "/chat" : "/"), {
          reconnection: false, forceNew: true, timeout: 5000, transports, extraHeaders: { cookie },
        }));
      }
      await Promise.all(sockets.map(connected));

      const acked = [];
      const errors = [];
      const told = [];
      let stopped = false;
      const done = sockets.map((s) => new Promise((resolve) => {
        s.on("server_stopping", (why, ack) => { told.push(why); ack(); });
        s.on("disconnect", (reason) => { stopped = true; resolve(reason); });
      }));
      // Each socket keeps BURST increments in flight until it is disconnected.
      const send = (s) => {
        if (stopped || !s.connected) return;
        s.emit("incr", (n) => {
          if (typeof n === "number") acked.push(n); else errors.push(n);
          send(s);
        });
      };
      for (const s of sockets) for (let i = 0; i < BURST; i++) send(s);

      await sleep(300);
      assert.ok(acked.length > 20, `bursts under way: ${acked.length} acks`);
      const exit = new Promise((resolve) => chat.child.once("exit", (code, signal) => resolve({ code, signal })));
      const killedAt = Date.now();
      chat.child.kill("SIGTERM");
      const { code, signal } = await exit;
      const took = Date.now() - killedAt;
      assert.equal(signal, null, "it exits, not killed by the signal");
      assert.equal(code, 0, chat.output());
      assert.ok(took < 5000, `exited in ${took} ms`);
      const reasons = await Promise.all(done);

      const record = JSON.parse(await redisGet(redisPort, "sess:" + sidOf(cookie)));
      const sorted = [...acked].sort((a, b) => a - b);

      assert.deepEqual(sorted, Array.from({ length: sorted.length }, (_, i) => i + 1),
        "every acknowledged value once, from 1 up: no write applied twice or lost");
      assert.equal(record.counter, sorted.length,
        `stored ${record.counter}, acknowledged ${sorted.length}: no increment applied without its ack`);
      for (const e of errors) assert.equal(e.error, "shutting_down", JSON.stringify(e));
      // Disconnected by the server; over polling the engine.io session may
      // close before the client's next poll collects the disconnect packet.
      for (const r of reasons) assert.match(r, /^(io server disconnect|transport (close|error))$/);
      assert.equal(told.length, SOCKETS, "each socket was told why");
      for (const why of told) {
        assert.equal(why.reason, "shutting_down");
        assert.match(why.message, /restarting/);
      }
      assert.match(chat.output(), /SIGTERM: stopping/);
      assert.match(chat.output(), /sessions stopped: \d+ writes landed, 0 failed/);
    }, 20000);
  }

  const ok = await t.run();
  redis.kill();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
