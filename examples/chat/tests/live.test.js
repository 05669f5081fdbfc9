// Live sessions across processes (R32), with real processes: one
// redis-server started with default settings, two chat nodes on it
// (--redis), and a stock Express app (express-session + connect-redis,
// examples/express-interop/node/app.js) sharing the secret. Sockets follow
// their session wherever it changes or ends.
// Usage: node tests/live.test.js <chat binary>
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { io } = require("socket.io-client");
const { connected, sleep, startChat, login, runner, freePort, redisCommand, startRedis, ended, eventually, whoami, sidOf, startExpress, expressLogin, expressPost } = require("./harness");

const bin = process.argv[2];
if (!bin) {
  console.error("usage: node tests/live.test.js <path to the chat binary>");
  process.exit(2);
}
const SECRET = "live test secret";

const sockets = [];
function connect(url, ns, cookie, transports = ["websocket"]) {
  const s = io(url + ns, { reconnection: false, forceNew: true, timeout: 5000, transports, extraHeaders: { cookie } });
  sockets.push(s);
  return s;
}

// ---- processes ----------------------------------------------------------------


async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-live-redis-"));
  const rport = await freePort();
  let redis = await startRedis(rport, dir);
  const redisUrl = `redis://127.0.0.1:${rport}/`;
  const cli = (...args) => execFileSync("redis-cli", ["-p", String(rport), ...args.map(String)], { encoding: "utf8" }).trim();
  assert.equal(cli("CONFIG", "GET", "notify-keyspace-events"), "notify-keyspace-events", "default settings: no keyspace events");
  const a = await startChat(bin, ["--secret", SECRET, "--redis", redisUrl]);
  const b = await startChat(bin, ["--secret", SECRET, "--redis", redisUrl]);
  const ex = await startExpress({ REDIS_URL: redisUrl, SECRET });
  const t = runner();

  t.test("r32 an Express logout disconnects the session's sockets on both nodes", async () => {
    const cookie = await expressLogin(ex.url, "ada");
    const [sa, sb] = [connect(a.url, "/", cookie), connect(b.url, "/chat", cookie)];
    await Promise.all([connected(sa), connected(sb)]);
    assert.equal((await whoami(sa)).user, "ada");
    const gone = [ended(sa), ended(sb)];
    assert.equal((await expressPost(ex.url, "/logout", cookie)).status, 200);
    for (const g of await Promise.all(gone)) {
      assert.equal(g.reason, "io server disconnect");
      assert.equal(g.ended && g.ended.reason, "destroyed");
    }
  });

  t.test("r32 an Express write is seen by sockets on both nodes without a reload", async () => {
    const cookie = await expressLogin(ex.url, "grace");
    const [sa, sb] = [connect(a.url, "/", cookie), connect(b.url, "/", cookie, ["polling"])];
    await Promise.all([connected(sa), connected(sb)]);
    const res = await expressPost(ex.url, `/set?key=color&value=${encodeURIComponent('"red"')}`, cookie);
    assert.equal(res.status, 200);
    for (const s of [sa, sb]) {
      await eventually("the socket sees color=red", async () => {
        const me = await whoami(s);
        return { ok: me.color === "red", value: me };
      });
    }
    sa.disconnect(); sb.disconnect();
  });

  t.test("r32 a socket write on node A is seen by the session's socket on node B", async () => {
    const cookie = await login(a.url, "linus");
    const [sa, sb] = [connect(a.url, "/", cookie), connect(b.url, "/", cookie)];
    await Promise.all([connected(sa), connected(sb)]);
    assert.equal(await sa.timeout(5000).emitWithAck("incr"), 1);
    await eventually("node B's socket sees counter=1", async () => {
      const me = await whoami(sb);
      return { ok: me.counter === 1, value: me };
    });
    // And the other way round, with both copies current.
    assert.equal(await sb.timeout(5000).emitWithAck("incr"), 2);
    await eventually("node A's socket sees counter=2", async () => {
      const me = await whoami(sa);
      return { ok: me.counter === 2, value: me };
    });
    sa.disconnect(); sb.disconnect();
  });

  t.test("r32 DEL in Redis and TTL expiry disconnect only that session's sockets", async () => {
    const [c1, c2, c3] = [await login(a.url, "del"), await login(b.url, "ttl"), await login(a.url, "bystander")];
    const s1 = [connect(a.url, "/", c1), connect(b.url, "/", c1)];
    const s2 = [connect(a.url, "/", c2), connect(b.url, "/chat", c2)];
    const s3 = [connect(a.url, "/", c3), connect(b.url, "/", c3)];
    await Promise.all([...s1, ...s2, ...s3].map(connected));
    const gone1 = s1.map((s) => ended(s));
    assert.equal(await redisCommand(rport, "DEL", `sess:${sidOf(c1)}`), ":1");
    for (const g of await Promise.all(gone1)) assert.equal(g.ended && g.ended.reason, "destroyed");
    const gone2 = s2.map((s) => ended(s, 8000));
    assert.equal(await redisCommand(rport, "PEXPIRE", `sess:${sidOf(c2)}`, "300"), ":1");
    for (const g of await Promise.all(gone2)) assert.equal(g.ended && g.ended.reason, "expired");
    for (const s of s3) {
      assert.equal(s.connected, true, "a bystander stays connected");
      assert.equal((await whoami(s)).user, "bystander");
    }
    s3.forEach((s) => s.disconnect());
  });

  t.test("a chat message on node A reaches clients on node B (socket.io Redis adapter)", async () => {
    const [ca, cb] = [await login(a.url, "sender"), await login(b.url, "receiver")];
    const [sa, sb] = [connect(a.url, "/chat", ca), connect(b.url, "/chat", cb)];
    await Promise.all([connected(sa), connected(sb)]);
    const got = new Promise((resolve) => sb.on("message", (m) => { if (m.text === "across nodes") resolve(m); }));
    sa.emit("message", "across nodes");
    assert.deepEqual(await Promise.race([got, sleep(3000).then(() => "nothing")]), { user: "sender", text: "across nodes" });
    sa.disconnect(); sb.disconnect();
  });

  t.test("r32 after a Redis restart, broadcasts cross the nodes again and a later destroy still disconnects on both", async () => {
    const cookie = await login(a.url, "restart");
    const [sa, sb] = [connect(a.url, "/", cookie), connect(b.url, "/", cookie)];
    await Promise.all([connected(sa), connected(sb)]);
    await redisCommand(rport, "SHUTDOWN", "SAVE");
    await new Promise((r) => redis.once("exit", r));
    await sleep(300);
    redis = await startRedis(rport, dir); // default settings again: the nodes configure it anew
    // The sockets survive the outage (their session is still in Redis) ...
    await eventually("both nodes subscribed again, with keyspace events configured", async () => {
      const events = cli("CONFIG", "GET", "notify-keyspace-events").split("\n")[1] || "";
      // Clients subscribed to a pattern: the two nodes' keyspace subscriptions.
      const subscribers = cli("CLIENT", "LIST").split("\n").filter((l) => / psub=[1-9]/.test(l)).length;
      return { ok: events.includes("K") && subscribers >= 2, value: { events, subscribers } };
    }, 10000);
    assert.equal((await whoami(sa)).user, "restart");
    assert.equal((await whoami(sb)).user, "restart");
    // Broadcasts between the nodes come back too: the socket.io adapter's
    // connection reconnects and subscribes again.
    const [ca, cb] = [await login(a.url, "after"), await login(b.url, "listener")];
    const [ma, mb] = [connect(a.url, "/chat", ca), connect(b.url, "/chat", cb)];
    await Promise.all([connected(ma), connected(mb)]);
    await eventually("a message from node A reaches node B after the restart", async () => {
      const text = `after restart ${Date.now()}`;
      const got = new Promise((resolve) => mb.on("message", (m) => { if (m.text === text) resolve(m); }));
      ma.emit("message", text);
      const m = await Promise.race([got, sleep(250).then(() => null)]);
      return { ok: m !== null && m.user === "after", value: m };
    }, 10000);
    ma.disconnect(); mb.disconnect();
    // ... and a destroy after it still reaches both.
    const gone = [ended(sa), ended(sb)];
    const res = await fetch(a.url + "/logout", { method: "POST", headers: { cookie }, redirect: "manual" });
    assert.equal(res.status, 303);
    for (const g of await Promise.all(gone)) assert.equal(g.reason, "io server disconnect");
  }, 30000);

  t.test("r32 handshakes racing a logout: none stays connected to the ended session (200 rounds x 6)", async () => {
    let stayed = 0;
    let total = 0;
    for (let round = 0; round < 200; round++) {
      const cookie = await login(a.url, `race${round}`);
      const socks = [];
      for (let i = 0; i < 6; i++) socks.push(connect(i % 2 ? b.url : a.url, i % 3 ? "/" : "/chat", cookie, i % 4 === 3 ? ["polling"] : ["websocket"]));
      const settle = socks.map((s) => new Promise((resolve) => {
        s.once("connect", resolve);
        s.once("connect_error", resolve);
        setTimeout(resolve, 5000);
      }));
      await sleep(round % 5); // vary where the logout lands
      const out = await fetch(a.url + "/logout", { method: "POST", headers: { cookie }, redirect: "manual" });
      assert.equal(out.status, 303);
      await Promise.all(settle);
      total += socks.length;
      await sleep(150);
      stayed += socks.filter((s) => s.connected).length;
      socks.forEach((s) => s.disconnect());
    }
    assert.equal(stayed, 0, `${stayed} of ${total} sockets stayed connected to an ended session`);
  }, 90000);

  const ok = await t.run(20000);
  if (!ok) console.log(`node A:\n${a.output()}\nnode B:\n${b.output()}`);
  for (const s of sockets) s.disconnect();
  for (const p of [a.child, b.child, ex.child, redis]) p.kill();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
