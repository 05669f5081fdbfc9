// The chat on a Redis Cluster, with real processes: three primaries and three
// replicas of stock redis-server (started with default settings: the chat
// configures keyspace notifications on every node), two chat nodes
// (--redis-cluster seed URLs), and a stock Express app (express-session +
// connect-redis 9 on node-redis's cluster client,
// examples/express-interop/node/app.js with REDIS_CLUSTER) sharing the secret.
// Sessions live on every primary; sockets follow them on both nodes; a
// primary killed while a socket writes loses no acknowledged write (R37).
// Usage: node tests/cluster.test.js <chat binary>
"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const { connected, sleep, startChat, login, runner, ended, eventually, whoami, sidOf, startExpress, expressLogin, expressPost } = require("./harness");
const { startCluster } = require("./cluster");

const bin = process.argv[2];
if (!bin) {
  console.error("usage: node tests/cluster.test.js <path to the chat binary>");
  process.exit(2);
}
const SECRET = "cluster test secret";

const sockets = [];
function connect(url, ns, cookie, transports = ["websocket"]) {
  const s = io(url + ns, { reconnection: false, forceNew: true, timeout: 5000, transports, extraHeaders: { cookie } });
  sockets.push(s);
  return s;
}


/**
 * Logs in through `loginAs(name)` until every primary holds at least `each`
 * of the sessions; resolves to [{ cookie, user, primary }].
 */
async function sessionsOnEveryPrimary(cluster, loginAs, prefix, each = 1) {
  const primaries = await cluster.primaries();
  const out = [];
  for (let i = 0; i < 200; i++) {
    const user = `${prefix}${i}`;
    const cookie = await loginAs(user);
    const primary = await cluster.primaryOf(`sess:${sidOf(cookie)}`);
    out.push({ cookie, user, primary });
    if (primaries.every((p) => out.filter((s) => s.primary === p).length >= each)) return out;
  }
  throw new Error("sessions did not spread over every primary in 200 logins");
}

/** The session record on its primary. */
async function stored(cluster, cookie) {
  const raw = await cluster.keyed(`sess:${sidOf(cookie)}`, "GET", `sess:${sidOf(cookie)}`);
  return raw === null ? null : JSON.parse(raw);
}

async function main() {
  const started = Date.now();
  const cluster = await startCluster();
  console.log(`# cluster up in ${Date.now() - started} ms on ${cluster.ports.join(", ")}`);
  const children = [];
  const t = runner();
  let a, b, ex;
  try {
    // Different seeds for each node: one answering seed is enough.
    a = await startChat(bin, ["--secret", SECRET, "--redis-cluster", cluster.seeds[0], "--redis-cluster", cluster.seeds[1]]);
    b = await startChat(bin, ["--secret", SECRET, "--redis-cluster", cluster.seeds[2]]);
    ex = await startExpress({ REDIS_CLUSTER: cluster.seeds.join(","), SECRET });
    children.push(a.child, b.child, ex.child);
  } catch (e) {
    for (const c of children) c.kill();
    cluster.stop();
    throw e;
  }

  t.test("keyspace notifications are configured on every node, replicas included", async () => {
    for (const p of cluster.ports) {
      const [, events] = await cluster.command(p, "CONFIG", "GET", "notify-keyspace-events");
      for (const c of "Kg$xe") assert.ok(events.includes(c), `node ${p}: ${events}`);
    }
  });

  t.test("r24 sessions land on every primary and each is the socket's session", async () => {
    const sessions = await sessionsOnEveryPrimary(cluster, (u) => login(a.url, u), "spread", 2);
    for (const [i, s] of sessions.entries()) {
      const sock = connect(i % 2 ? b.url : a.url, i % 3 ? "/" : "/chat", s.cookie);
      await connected(sock);
      assert.equal((await whoami(sock)).user, s.user);
      assert.equal((await stored(cluster, s.cookie)).user, s.user);
      sock.disconnect();
    }
  });

  t.test("r32 Express logins, writes and logouts reach sockets on two chat nodes live, for sessions of every primary", async () => {
    const sessions = await sessionsOnEveryPrimary(cluster, (u) => expressLogin(ex.url, u), "express");
    const primaries = await cluster.primaries();
    for (const p of primaries) {
      const s = sessions.find((x) => x.primary === p);
      const [sa, sb] = [connect(a.url, "/", s.cookie), connect(b.url, "/chat", s.cookie, ["polling"])];
      await Promise.all([connected(sa), connected(sb)]);
      assert.equal((await whoami(sa)).user, s.user);
      const color = `c${p}`;
      assert.equal((await expressPost(ex.url, `/set?key=color&value=${encodeURIComponent(JSON.stringify(color))}`, s.cookie)).status, 200);
      for (const sock of [sa, sb]) {
        await eventually(`the socket sees the Express write (primary ${p})`, async () => {
          const me = await whoami(sock);
          return { ok: me.color === color, value: me };
        });
      }
      const gone = [ended(sa), ended(sb)];
      assert.equal((await expressPost(ex.url, "/logout", s.cookie)).status, 200);
      for (const g of await Promise.all(gone)) {
        assert.equal(g.reason, "io server disconnect");
        assert.equal(g.ended && g.ended.reason, "destroyed", `primary ${p}`);
      }
    }
  }, 30000);

  t.test("a chat message on node A reaches clients on node B (socket.io on the cluster)", async () => {
    const [ca, cb] = [await login(a.url, "sender"), await login(b.url, "receiver")];
    const [sa, sb] = [connect(a.url, "/chat", ca), connect(b.url, "/chat", cb)];
    await Promise.all([connected(sa), connected(sb)]);
    const got = new Promise((resolve) => sb.on("message", (m) => { if (m.text === "across nodes") resolve(m); }));
    sa.emit("message", "across nodes");
    assert.deepEqual(await Promise.race([got, sleep(3000).then(() => "nothing")]), { user: "sender", text: "across nodes" });
    sa.disconnect(); sb.disconnect();
  });

  t.test("r25 8 sockets on 2 nodes x 25 increments of one session: 200 acknowledged, 200 stored", async () => {
    const cookie = await login(a.url, "counter");
    const socks = [];
    for (let i = 0; i < 8; i++) socks.push(connect(i % 2 ? b.url : a.url, i % 4 < 2 ? "/" : "/chat", cookie));
    await Promise.all(socks.map(connected));
    const acks = await Promise.all(socks.map(async (s) => {
      const mine = [];
      for (let i = 0; i < 25; i++) mine.push(await s.timeout(10000).emitWithAck("incr"));
      return mine;
    }));
    const all = acks.flat();
    const bad = all.filter((n) => typeof n !== "number");
    assert.deepEqual(bad, [], "every increment acknowledged with its value");
    assert.equal(new Set(all).size, 200, "200 distinct values");
    assert.equal((await stored(cluster, cookie)).counter, 200);
    assert.equal((await whoami(socks[1])).counter, 200);
    socks.forEach((s) => s.disconnect());
  }, 30000);

  t.test("r37 kill -9 a primary while a socket writes to one of its sessions: no acknowledged write lost, then a logout and new logins still work", async () => {
    const victim = (await cluster.primaries())[1];
    const replica = await cluster.replicaOf(victim);
    const sessions = await sessionsOnEveryPrimary(cluster, (u) => login(a.url, u), "failover");
    const s = sessions.find((x) => x.primary === victim);
    const [sa, sb] = [connect(a.url, "/", s.cookie), connect(b.url, "/", s.cookie)];
    await Promise.all([connected(sa), connected(sb)]);
    const acked = []; // [time, value]
    const errors = [];
    let writing = true;
    const writer = (async () => {
      while (writing) {
        try {
          const r = await sa.timeout(8000).emitWithAck("incr");
          if (typeof r === "number") acked.push([Date.now(), r]);
          else errors.push(r && r.error);
        } catch (e) {
          errors.push(e.message);
        }
      }
    })();
    await eventually("writes acknowledged before the kill", async () => ({ ok: acked.length >= 10, value: acked.length }), 5000);
    cluster.kill(victim);
    const killed = Date.now();
    const took = await cluster.waitPrimary(replica);
    const promoted = killed + took;
    await eventually("writes land again after the promotion", async () => {
      const after = acked.filter(([at]) => at > promoted).length;
      return { ok: after >= 10, value: { after, errors } };
    }, 15000);
    writing = false;
    await writer;
    const values = acked.map(([, v]) => v);
    assert.equal(new Set(values).size, values.length, `an acknowledged value twice: ${values}`);
    const highest = Math.max(...values);
    assert.equal((await stored(cluster, s.cookie)).counter, highest, "the stored counter is the highest acknowledged");
    console.log(`# promoted ${took} ms after the kill; ${values.length} increments acknowledged, ${errors.length} failed meanwhile (${[...new Set(errors)].join(", ")})`);
    // The socket on node B follows it too.
    await eventually("node B's socket sees the last value", async () => {
      const me = await whoami(sb);
      return { ok: me.counter === highest, value: me };
    });
    // A logout of that session disconnects its sockets on both nodes.
    const gone = [ended(sa), ended(sb)];
    const out = await fetch(a.url + "/logout", { method: "POST", headers: { cookie: s.cookie }, redirect: "manual" });
    assert.equal(out.status, 303);
    for (const g of await Promise.all(gone)) assert.equal(g.ended && g.ended.reason, "destroyed");
    assert.equal(await stored(cluster, s.cookie), null);
    // New logins connect, on every primary (the promoted one included).
    const fresh = await sessionsOnEveryPrimary(cluster, (u) => login(b.url, u), "after");
    assert.ok(fresh.some((x) => x.primary === replica), "a session on the promoted node");
    for (const x of fresh.filter((y) => y.primary === replica || y === fresh[0])) {
      const sock = connect(a.url, "/", x.cookie);
      await connected(sock);
      assert.equal((await whoami(sock)).user, x.user);
      sock.disconnect();
    }
  }, 40000);

  const ok = await t.run(20000);
  if (!ok) console.log(`node A:\n${a.output()}\nnode B:\n${b.output()}`);
  for (const s of sockets) s.disconnect();
  for (const c of children) c.kill();
  cluster.stop();
  console.log(`# ${Math.round((Date.now() - started) / 100) / 10} s`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
