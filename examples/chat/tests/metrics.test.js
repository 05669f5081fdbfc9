// The chat's metrics (--metrics ADDR, Prometheus text format), scraped after
// a scripted workload on a private redis-server: logins, handshakes good and
// bad, a write that meets another writer's change (one conflict, one retry),
// a session deleted behind the chat's back, a logout. Every counter and
// gauge the workload moves is asserted exactly.
// Usage: node tests/metrics.test.js <chat binary>
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { io } = require("socket.io-client");
const { connected, sleep, startChat, login, runner, freePort, redisCommand, startRedis } = require("./harness");

const bin = process.argv[2];
if (!bin) {
  console.error("usage: node tests/metrics.test.js <path to the chat binary>");
  process.exit(2);
}
const SECRET = "metrics test secret";

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

/** Every `session_sockets_*` sample of the scrape, as "name{labels}" -> value. */
async function scrape(metricsUrl) {
  const text = await (await fetch(metricsUrl)).text();
  const samples = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("session_sockets_") || line.includes("quantile=")) continue;
    const at = line.lastIndexOf(" ");
    samples[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return samples;
}

const sidOf = (cookie) => decodeURIComponent(cookie.split("=")[1]).slice(2).split(".").slice(0, -1).join(".");
const sign = (sid) => "s:" + sid + "." + crypto.createHmac("sha256", SECRET).update(sid).digest("base64").replace(/=+$/, "");

const sockets = [];
function connect(url, ns, cookie, transports = ["websocket"]) {
  const s = io(url + ns, { reconnection: false, forceNew: true, timeout: 5000, transports, extraHeaders: cookie ? { cookie } : {} });
  sockets.push(s);
  return s;
}
const refused = (s) => new Promise((resolve, reject) => {
  s.once("connect", () => reject(new Error("connected, expected a refusal")));
  s.once("connect_error", resolve);
});
const disconnected = (s) => new Promise((resolve) => s.once("disconnect", resolve));
async function until(what, fn, ms = 3000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-metrics-"));
  const redisPort = await freePort();
  const redis = await startRedis(redisPort, dir);
  const metricsPort = await freePort();
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const chat = await startChat(bin, ["--secret", SECRET, "--redis", `redis://127.0.0.1:${redisPort}/`, "--metrics", `127.0.0.1:${metricsPort}`]);
  const url = chat.url;
  const t = runner();

  t.test("a scripted workload moves every counter and gauge by exactly what it did", async () => {
    const before = await scrape(metricsUrl);
    assert.deepEqual(before, {}, "nothing counted before the first operation");

    // Two logins: two creates.
    const ada = await login(url, "ada");
    const bob = await login(url, "bob");
    // Two sockets with a session: two opens pass, two handshakes succeed.
    // The first one starts the chat's subscription to Redis's events, which
    // once it reports re-validates (reloads) the sessions followed so far.
    const sa = connect(url, "/chat", ada);
    await connected(sa);
    await until("the event stream reports", async () => {
      const m = await scrape(metricsUrl);
      return m['session_sockets_store_events_total{kind="resumed"}'] === 1
        && m['session_sockets_operations_total{op="reload",outcome="ok"}'] === 1;
    });
    const sb = connect(url, "/chat", bob);
    await connected(sb);
    // Refused at the open (R39): no cookie, a tampered one.
    const tampered = ada.slice(0, -2) + (ada.endsWith("A") ? "B" : "A") + ada.slice(-1);
    assert.match((await refused(connect(url, "/chat", null, ["polling"]))).message, /^no_cookie_header: /);
    assert.match((await refused(connect(url, "/chat", tampered, ["polling"]))).message, /^signature_invalid: /);
    // A cookie that verifies, of a session the store never had: the open
    // passes, the handshake finds no session.
    const ghost = "connect.sid=" + encodeURIComponent(sign("no-such-session-here"));
    assert.match((await refused(connect(url, "/chat", ghost))).message, /^session_not_found: /);

    // Another writer changes Ada's record while the chat hears nothing of
    // it (keyspace events off for a moment): the socket's update meets it,
    // conflicts once, and retries on the record as it is now.
    const key = "sess:" + sidOf(ada);
    const record = JSON.parse(await redisGet(redisPort, key));
    record.counter = 41;
    assert.equal(await redisCommand(redisPort, "CONFIG", "SET", "notify-keyspace-events", ""), "+OK");
    assert.equal(await redisCommand(redisPort, "SET", key, JSON.stringify(record), "KEEPTTL"), "+OK");
    assert.equal(await redisCommand(redisPort, "CONFIG", "SET", "notify-keyspace-events", "Kg$xe"), "+OK");
    assert.equal(await sa.timeout(5000).emitWithAck("incr"), 42, "the other writer's value, plus one");

    // Bob's record deleted behind the chat's back: a store event, and his
    // socket is told and disconnected.
    const bobGone = disconnected(sb);
    assert.equal(await redisCommand(redisPort, "DEL", "sess:" + sidOf(bob)), ":1");
    await bobGone;
    // Ada logs out over HTTP: one load, one destroy, her socket ends.
    const adaGone = disconnected(sa);
    const out = await fetch(url + "/logout", { method: "POST", headers: { cookie: ada }, redirect: "manual" });
    assert.equal(out.status, 303);
    await adaGone;

    const want = {
      'session_sockets_operations_total{op="create",outcome="ok"}': 2,
      'session_sockets_operations_total{op="open",outcome="ok"}': 3,
      'session_sockets_operations_total{op="open",outcome="no_cookie_header"}': 1,
      'session_sockets_operations_total{op="open",outcome="signature_invalid"}': 1,
      'session_sockets_operations_total{op="handshake",outcome="ok"}': 2,
      'session_sockets_operations_total{op="handshake",outcome="session_not_found"}': 1,
      'session_sockets_operations_total{op="update",outcome="ok"}': 1,
      'session_sockets_operations_total{op="commit",outcome="ok"}': 1,
      // The re-validation when the event stream began, and the logout's load.
      'session_sockets_operations_total{op="reload",outcome="ok"}': 2,
      'session_sockets_operations_total{op="destroy",outcome="ok"}': 1,
      'session_sockets_cas_conflicts_total{op="commit"}': 1,
      'session_sockets_cas_retries_total{op="commit"}': 1,
      // The stream began after the logins; then Redis reports Bob's DEL
      // and Ada's logout DEL (the chat's own compare-and-sets it recognises
      // and leaves out).
      'session_sockets_store_events_total{kind="resumed"}': 1,
      'session_sockets_store_events_total{kind="deleted"}': 2,
      'session_sockets_session_ends_total{reason="destroyed"}': 2,
      session_sockets_followed_sessions: 0,
      session_sockets_followed_sockets: 0,
    };
    // Events and ends land a moment after the replies that caused them.
    let got;
    const end = Date.now() + 3000;
    do {
      got = await scrape(metricsUrl);
      for (const k of Object.keys(got)) if (k.startsWith("session_sockets_store_latency_seconds")) delete got[k];
      try { assert.deepEqual(got, want); return; } catch { await sleep(50); }
    } while (Date.now() < end);
    assert.deepEqual(got, want);
  }, 30000);

  t.test("store latency is a histogram per request kind", async () => {
    const text = await (await fetch(metricsUrl)).text();
    for (const request of ["load", "create", "compare_and_set", "destroy"]) {
      const count = text.match(new RegExp(`^session_sockets_store_latency_seconds_count\\{request="${request}"\\} (\\d+)$`, "m"));
      assert.ok(count && Number(count[1]) >= 1, `${request}: ${count}`);
    }
  });

  t.test("the followed gauges count sockets and sessions while they are connected", async () => {
    const carol = await login(url, "carol");
    const s1 = connect(url, "/chat", carol);
    const s2 = connect(url, "/", carol);
    await Promise.all([connected(s1), connected(s2)]);
    const gauge = async () => {
      const g = await scrape(metricsUrl);
      return [g.session_sockets_followed_sessions, g.session_sockets_followed_sockets];
    };
    assert.deepEqual(await gauge(), [1, 2]);
    s1.disconnect();
    s2.disconnect();
    const until = Date.now() + 3000;
    while (Date.now() < until && (await gauge())[1] !== 0) await sleep(20);
    assert.deepEqual(await gauge(), [0, 0]);
  });

  const ok = await t.run();
  for (const s of sockets) s.disconnect();
  chat.child.kill();
  redis.kill();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
