// Sessions of Rust HTTP apps, live, with real processes: one redis-server
// (default settings), the real tower-sessions 0.14 app (axum +
// tower-sessions-redis-store) in plain, signed and private mode and the
// real actix-session 0.11 app in private and signed mode
// (examples/tower-sessions-app, examples/actix-session-app), and two chat
// nodes started with --format and the app's key. For each: the app's login
// is the socket's session; socket writes are read back by the app; the
// app's writes reach sockets without a reload; 40 concurrent socket writes
// from two nodes are all kept; the app's logout and expiry disconnect
// sockets on both nodes; tampered, foreign-key and name-moved cookies are
// refused before any store lookup; a login made by the chat is one the app
// reads.
// Usage: node tests/formats.test.js <chat> <tower-sessions-app> <actix-session-app>
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { io } = require("socket.io-client");
const { connected, sleep, startChat, runner, freePort, startRedis } = require("./harness");

const [chatBin, towerBin, actixBin] = process.argv.slice(2);
if (!chatBin || !towerBin || !actixBin) {
  console.error("usage: node tests/formats.test.js <chat> <tower-sessions-app> <actix-session-app>");
  process.exit(2);
}

// The app's 64-byte cookie::Key (bytes i*37 mod 256: `+` and `/` in its
// base64), and another app's.
const KEY_BYTES = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256));
const KEY = KEY_BYTES.toString("base64");
const FOREIGN_BYTES = Buffer.alloc(64, 7);

// ---- the cookie crate's values, for forged cookies -----------------------------

/** The cookie crate's signed value of `value` with a 64-byte key. */
const sign = (key, value) => crypto.createHmac("sha256", key.subarray(0, 32)).update(value).digest("base64") + value;
/** The cookie crate's private value of `value`, sealed for cookie `name`. */
function seal(key, name, value) {
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv("aes-256-gcm", key.subarray(32, 64), nonce);
  c.setAAD(Buffer.from(name));
  const body = Buffer.concat([c.update(value), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]).toString("base64");
}
/** Opens a private value with the app's key (to learn the id inside). */
function open(key, name, sealed) {
  const data = Buffer.from(sealed, "base64");
  const d = crypto.createDecipheriv("aes-256-gcm", key.subarray(32, 64), data.subarray(0, 12));
  d.setAAD(Buffer.from(name));
  d.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([d.update(data.subarray(12, data.length - 16)), d.final()]).toString();
}
/** `value` with one base64 character in its middle changed. */
function tamper(value) {
  const i = Math.floor(value.length / 2);
  return value.slice(0, i) + (value[i] === "A" ? "B" : "A") + value.slice(i + 1);
}

// ---- processes ------------------------------------------------------------------

const children = [];
/** Starts an app binary; resolves to { url, child } once it listens. */
function startApp(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    const t = setTimeout(() => { child.kill(); reject(new Error(`${path.basename(bin)} did not start: ${out}`)); }, 20000);
    const on = (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(t); resolve({ url: m[1], child }); }
    };
    child.stdout.on("data", on);
    child.stderr.on("data", on);
    child.on("exit", (code) => { clearTimeout(t); reject(new Error(`${path.basename(bin)} exited with ${code}: ${out}`)); });
  });
}

const sockets = [];
/** A socket.io client on `url`'s namespace `/` with `cookie` (the cookie pair as a browser sends it back). */
function connect(url, cookie, transports = ["websocket"]) {
  const s = io(url + "/", { reconnection: false, forceNew: true, timeout: 5000, transports, extraHeaders: { cookie } });
  sockets.push(s);
  return s;
}
const whoami = (s) => s.timeout(5000).emitWithAck("whoami");
const incr = (s) => s.timeout(10000).emitWithAck("incr");
/** Resolves to { reason, ended } once the server disconnects `s`. */
function ended(s, ms = 8000) {
  return new Promise((resolve, reject) => {
    let payload = null;
    s.once("session_ended", (p) => { payload = p; });
    const t = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
    s.once("disconnect", (reason) => { clearTimeout(t); resolve({ reason, ended: payload }); });
  });
}
/** The connect_error of `s` (over polling: the open's refusal carries `reason: hint`). */
function refused(s) {
  return new Promise((resolve, reject) => {
    s.once("connect", () => reject(new Error("connected with a cookie that should be refused")));
    s.once("connect_error", resolve);
  });
}
async function eventually(what, fn, ms = 4000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok) return last.value;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms; last: ${JSON.stringify(last.value)}`);
    await sleep(25);
  }
}

/** The `name=value` pair of the response's Set-Cookie. */
function cookieOf(res) {
  const set = res.headers.getSetCookie();
  assert.equal(set.length, 1, `one Set-Cookie: ${JSON.stringify(set)}`);
  return set[0].split(";")[0];
}
const post = (url, p, cookie) => fetch(url + p, { method: "POST", headers: cookie ? { cookie } : {}, redirect: "manual" });
const get = (url, p, cookie) => fetch(url + p, { headers: cookie ? { cookie } : {} });
async function appLogin(app, name) {
  const res = await post(app, `/login/${name}`);
  assert.equal(res.status, 200, `the app's login: ${res.status}`);
  return cookieOf(res);
}
async function appMe(app, cookie) {
  const res = await get(app, "/me", cookie);
  return { status: res.status, data: res.status === 200 ? await res.json() : null };
}

/** GET calls the server has answered so far (INFO commandstats). */
async function getCalls(rport) {
  const info = await new Promise((resolve, reject) => {
    const c = require("node:net").connect(rport, "127.0.0.1");
    let out = "";
    c.on("data", (d) => { out += d; if (/\r\n$/.test(out) && out.length > 20) { c.destroy(); resolve(out); } });
    c.on("error", reject);
    c.write("*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n");
  });
  const m = info.match(/cmdstat_get:calls=(\d+)/);
  return m ? Number(m[1]) : 0;
}

// ---- the variants -------------------------------------------------------------

const VARIANTS = [
  { label: "tower-sessions plain", bin: towerBin, app: ["--mode", "plain"], chat: ["--format", "tower-sessions"], expiry: ["--inactivity", "3"], kind: "tower", mode: "plain" },
  { label: "tower-sessions signed", bin: towerBin, app: ["--mode", "signed", "--key", KEY], chat: ["--format", "tower-sessions", "--signed", KEY], expiry: ["--inactivity", "3"], kind: "tower", mode: "signed" },
  { label: "tower-sessions private", bin: towerBin, app: ["--mode", "private", "--key", KEY], chat: ["--format", "tower-sessions", "--private", KEY], expiry: ["--inactivity", "3"], kind: "tower", mode: "private" },
  { label: "actix-session private", bin: actixBin, app: ["--mode", "private", "--key", KEY], chat: ["--format", "actix-session", "--private", KEY], expiry: ["--persistent", "3"], kind: "actix", mode: "private" },
  { label: "actix-session signed", bin: actixBin, app: ["--mode", "signed", "--key", KEY], chat: ["--format", "actix-session", "--signed", KEY], expiry: ["--persistent", "3"], kind: "actix", mode: "signed" },
];

/**
 * The refused cookies of a variant, each with the reason the socket is
 * told: the app's own cookie tampered with, one made with another key, and
 * (private) one sealed with the app's key for another cookie name.
 */
function badCookies(v, good) {
  // actix percent-encodes its values; the cookie crate decodes them.
  const value = decodeURIComponent(good.slice(good.indexOf("=") + 1));
  const id = v.mode === "private" ? open(KEY_BYTES, "id", value) : v.mode === "signed" ? value.slice(44) : value;
  const enc = (x) => encodeURIComponent(x);
  switch (v.mode) {
    case "plain":
      // Nothing to verify: an id of the wrong shape never reaches the store.
      return [{ what: "not an id", cookie: "id=" + tamper(id) + "x", reason: "invalid_id" }];
    case "signed":
      return [
        { what: "tampered", cookie: "id=" + enc(value.slice(0, 44) + tamper(id)), reason: "signature_invalid" },
        { what: "foreign key", cookie: "id=" + enc(sign(FOREIGN_BYTES, id)), reason: "signature_invalid" },
      ];
    case "private":
      return [
        { what: "tampered", cookie: "id=" + enc(tamper(value)), reason: "seal_invalid" },
        { what: "foreign key", cookie: "id=" + enc(seal(FOREIGN_BYTES, "id", id)), reason: "seal_invalid" },
        { what: "name-moved", cookie: "id=" + enc(seal(KEY_BYTES, "sid", id)), reason: "seal_invalid" },
      ];
    default:
      throw new Error(v.mode);
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-formats-redis-"));
  const rport = await freePort();
  const redis = await startRedis(rport, dir);
  const redisUrl = `redis://127.0.0.1:${rport}`;
  const t = runner();
  let current = null;

  for (const v of VARIANTS) {
    t.test(`${v.label}: the app and two chat nodes start on one Redis`, async () => {
      if (current) { for (const c of current.children) c.kill(); }
      const app = await startApp(v.bin, ["--redis", redisUrl, ...v.app]);
      const a = await startChat(chatBin, ["--redis", redisUrl, ...v.chat]);
      const b = await startChat(chatBin, ["--redis", redisUrl, ...v.chat]);
      children.push(a.child, b.child);
      current = { app: app.url, a: a.url, b: b.url, children: [app.child, a.child, b.child] };
    }, 60000);

    t.test(`r36 ${v.label}: the app's login is the socket's session, on both nodes`, async () => {
      const { app, a, b } = current;
      const cookie = await appLogin(app, "ada");
      const [sa, sb] = [connect(a, cookie), connect(b, cookie, ["polling"])];
      await Promise.all([connected(sa), connected(sb)]);
      for (const s of [sa, sb]) {
        const me = await whoami(s);
        assert.equal(me.user, "ada");
        if (v.kind === "tower") assert.equal(me["axum-login.data"].user_id, "ada", "axum-login's entry");
      }
      sa.disconnect(); sb.disconnect();
    });

    t.test(`r25 ${v.label}: socket writes are read back by the app, which still decodes the record`, async () => {
      const { app, a } = current;
      const cookie = await appLogin(app, "grace");
      const s = connect(a, cookie);
      await connected(s);
      assert.equal(await incr(s), 1);
      assert.equal(await incr(s), 2);
      const me = await appMe(app, cookie);
      assert.equal(me.status, 200);
      assert.equal(me.data.counter, 2);
      assert.equal(me.data.user, "grace", "the app's own keys are kept");
      // The app writes on top of the record the socket wrote.
      assert.equal(await (await post(app, "/incr", cookie)).text(), "1");
      s.disconnect();
    });

    t.test(`r32 ${v.label}: the app's writes reach sockets on both nodes without a reload`, async () => {
      const { app, a, b } = current;
      const cookie = await appLogin(app, "linus");
      const [sa, sb] = [connect(a, cookie), connect(b, cookie)];
      await Promise.all([connected(sa), connected(sb)]);
      assert.equal((await post(app, "/set/color/blue", cookie)).status, 200);
      for (const s of [sa, sb]) {
        await eventually("the socket sees color=blue", async () => {
          const me = await whoami(s);
          return { ok: me.color === "blue", value: me };
        });
      }
      sa.disconnect(); sb.disconnect();
    });

    t.test(`r25 ${v.label}: 40 concurrent socket writes from two nodes are all kept`, async () => {
      const { app, a, b } = current;
      const cookie = await appLogin(app, "many");
      const [sa, sb] = [connect(a, cookie), connect(b, cookie)];
      await Promise.all([connected(sa), connected(sb)]);
      const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => incr(i % 2 ? sb : sa)));
      assert.deepEqual([...acks].sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1), "each write saw the ones before it");
      const me = await appMe(app, cookie);
      assert.equal(me.data.counter, 40);
      assert.equal(me.data.user, "many");
      sa.disconnect(); sb.disconnect();
    });

    t.test(`r32 ${v.label}: the app's logout disconnects the session's sockets on both nodes`, async () => {
      const { app, a, b } = current;
      const cookie = await appLogin(app, "bye");
      const [sa, sb] = [connect(a, cookie), connect(b, cookie)];
      await Promise.all([connected(sa), connected(sb)]);
      const gone = [ended(sa), ended(sb)];
      const res = await post(app, "/logout", cookie);
      assert.equal(res.status, 200);
      for (const g of await Promise.all(gone)) {
        assert.equal(g.reason, "io server disconnect");
        assert.equal(g.ended && g.ended.reason, "destroyed");
      }
    });

    t.test(`r32 ${v.label}: the app's expiry disconnects the session's sockets on both nodes`, async () => {
      const { a, b } = current;
      // The same app with sessions of three seconds.
      const short = await startApp(v.bin, ["--redis", redisUrl, ...v.app, ...v.expiry]);
      try {
        const cookie = await appLogin(short.url, "brief");
        const [sa, sb] = [connect(a, cookie), connect(b, cookie)];
        await Promise.all([connected(sa), connected(sb)]);
        assert.equal((await whoami(sa)).user, "brief");
        for (const g of await Promise.all([ended(sa), ended(sb)])) {
          assert.equal(g.reason, "io server disconnect");
          assert.equal(g.ended && g.ended.reason, "expired");
        }
      } finally {
        short.child.kill();
      }
    }, 20000);

    t.test(`r36 ${v.label}: tampered, foreign-key and name-moved cookies are refused before any store lookup`, async () => {
      const { app, a } = current;
      const good = await appLogin(app, "mallory");
      const before = await getCalls(rport);
      for (const bad of badCookies(v, good)) {
        const err = await refused(connect(a, bad.cookie, ["polling"]));
        assert.match(err.message, new RegExp(`^${bad.reason}: `), `${bad.what}: ${err.message}`);
        // R35: the hint tells the person at the browser nothing of keys or formats.
        const hint = err.message.slice(bad.reason.length + 2);
        assert.doesNotMatch(hint, /key|tower|actix|seal|HMAC/i, bad.what);
      }
      assert.equal(await getCalls(rport), before, "no GET reached Redis");
      // The real cookie still works.
      const s = connect(a, good);
      await connected(s);
      s.disconnect();
    });

    t.test(`r36 ${v.label}: a login made by the chat is one the app reads, and the chat's logout ends it there`, async () => {
      const { app, a, b } = current;
      const res = await fetch(a + "/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "name=hopper",
        redirect: "manual",
      });
      assert.equal(res.status, 303);
      const set = res.headers.getSetCookie()[0];
      assert.match(set, v.kind === "tower" ? /; HttpOnly; SameSite=Strict; Secure; Path=\// : /; HttpOnly; SameSite=Lax; Secure; Path=\//);
      const cookie = set.split(";")[0];
      const me = await appMe(app, cookie);
      assert.equal(me.status, 200, "the app reads the chat's cookie and record");
      assert.equal(me.data.user, "hopper");
      // The app writes it, the chat (the other node) reads it.
      assert.equal(await (await post(app, "/incr", cookie)).text(), "1");
      const data = await (await get(b, "/api/session", cookie)).json();
      assert.equal(data.n, 1);
      // The chat's logout: the app no longer knows the session, and the
      // removal cookie is the format's.
      const out = await post(b, "/logout", cookie);
      assert.equal(out.status, 303);
      assert.match(out.headers.getSetCookie()[0], /^id=; .*Max-Age=0; Expires=/);
      assert.equal((await appMe(app, cookie)).status, 401);
    });
  }

  t.test("cleanup", async () => {
    for (const s of sockets) s.disconnect();
    for (const c of children) c.kill();
  });

  const ok = await t.run(20000);
  for (const s of sockets) s.disconnect();
  for (const c of children) c.kill();
  redis.kill();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  for (const c of children) c.kill();
  process.exit(1);
});
