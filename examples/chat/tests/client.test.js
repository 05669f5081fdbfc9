// socket.io-client (the real npm client) against the chat binary: the HTTP
// login's session is the socket's session, on polling and websocket alike.
// Usage: node tests/client.test.js <path to the chat binary> [more chat flags, e.g. --redis URL]
"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const WebSocket = require("ws");
const { describe, connected, once, startChat, login, runner } = require("./harness");

const bin = process.argv[2];
const extra = process.argv.slice(3);
if (!bin) {
  console.error("usage: node tests/client.test.js <path to the chat binary>");
  process.exit(2);
}

const sockets = [];
function connect(url, ns, opts) {
  const s = io(url + ns, { reconnection: false, forceNew: true, timeout: 5000, ...opts });
  sockets.push(s);
  return s;
}
const rejected = (s) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`${describe(s)}: neither connect nor connect_error within 8 s`)), 8000);
  s.once("connect", () => { clearTimeout(t); reject(new Error(`${describe(s)}: connected, expected a connect_error`)); });
  s.once("connect_error", (e) => { clearTimeout(t); resolve(e); });
});
const get = (url, path, cookie) => fetch(url + path, { headers: cookie ? { cookie } : {} });

async function main() {
  const chat = await startChat(bin, ["--secret", "client test secret", ...extra]);
  console.log(`chat: ${chat.output().trim()}`);
  const { url } = chat;
  const t = runner();

  for (const transports of [["polling"], ["websocket"]]) {
    const label = transports[0];
    t.test(`${label}: the socket sees the HTTP login's session (whoami)`, async () => {
      const cookie = await login(url, `ada-${label}`);
      const s = connect(url, "/", { transports, extraHeaders: { cookie } });
      await connected(s);
      assert.equal(s.io.engine.transport.name, label);
      const me = await s.timeout(5000).emitWithAck("whoami");
      assert.equal(me.user, `ada-${label}`);
      s.disconnect();
    });

    t.test(`${label}: incr saves into the session and GET /api/session sees it`, async () => {
      const cookie = await login(url, `grace-${label}`);
      const s = connect(url, "/", { transports, extraHeaders: { cookie } });
      await connected(s);
      assert.equal(await s.timeout(5000).emitWithAck("incr"), 1);
      assert.equal(await s.timeout(5000).emitWithAck("incr"), 2);
      const res = await get(url, "/api/session", cookie);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.user, `grace-${label}`);
      assert.equal(body.counter, 2);
      s.disconnect();
    });

    t.test(`${label}: rejected without a cookie, connect_error names the reason`, async () => {
      const s = connect(url, "/", { transports });
      const err = await rejected(s);
      if (label === "polling") {
        assert.match(err.message, /^no_cookie_header: /);
        // R35: a hint for the person at the browser, not what to check.
        assert.match(err.message, /not signed in/);
      } else {
        // R39: a WebSocket-only open without a cookie is refused with
        // engine.io's 403 before socket.io allocates anything; the reason
        // is in the refusal's body (browsers show only "websocket error").
        assert.equal(err.message, "websocket error");
        assert.match(String(err.description && err.description.message), /403/);
      }
    });

    t.test(`${label}: rejected with a tampered cookie (signature_invalid)`, async () => {
      const cookie = await login(url, `eve-${label}`);
      // Change one character of the signed id: the signature no longer matches.
      const i = "connect.sid=s%3A".length + 2;
      const flipped = cookie[i] === "A" ? "B" : "A";
      const tampered = cookie.slice(0, i) + flipped + cookie.slice(i + 1);
      assert.notEqual(tampered, cookie);
      const s = connect(url, "/", { transports, extraHeaders: { cookie: tampered } });
      const err = await rejected(s);
      if (label === "polling") {
        assert.match(err.message, /^signature_invalid: /);
        assert.match(err.message, /not valid here/);
        assert.doesNotMatch(err.message, /secret|connect\.sid/);
      } else {
        assert.equal(err.message, "websocket error"); // R39, as above
      }
    });
  }

  t.test("r05 a socket from a foreign Origin is rejected (origin_rejected), on both transports", async () => {
    const cookie = await login(url, "mallory");
    const headers = { cookie, origin: "https://evil.example" };
    const polling = await rejected(connect(url, "/", { transports: ["polling"], extraHeaders: headers }));
    assert.match(polling.message, /^origin_rejected: /);
    // A WebSocket open is refused at the upgrade (R39): engine.io's 403,
    // with the reason in its body.
    const refusal = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`, { headers: { cookie }, origin: headers.origin });
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c) => { body += c; });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      ws.on("open", () => { ws.close(); reject(new Error("upgraded")); });
      ws.on("error", () => {});
    });
    assert.equal(refusal.status, 403);
    assert.match(JSON.parse(refusal.body).message, /^origin_rejected: /);
  });

  t.test("r06 a later request of a connection (the WebSocket upgrade) from another site is refused", async () => {
    const cookie = await login(url, "upgrader");
    // A same-site page opens the connection over polling (no Origin on a same-origin GET) ...
    const open = await fetch(url + "/socket.io/?EIO=4&transport=polling", { headers: { cookie } });
    const { sid } = JSON.parse((await open.text()).slice(1));
    const upgrade = (origin) => new Promise((resolve) => {
      const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket&sid=${sid}`,
        { headers: { cookie }, origin });
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c) => { body += c; });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      ws.on("open", () => { ws.close(); resolve({ status: 101 }); });
      ws.on("error", (e) => resolve({ status: 0, body: e.message }));
    });
    // ... another site's page tries to upgrade it: refused before socketioxide sees it.
    const evil = await upgrade("https://evil.example");
    assert.equal(evil.status, 403);
    // R35: the reason and a hint; which origin is allowed is the operator's to read.
    assert.match(evil.body, /^origin_rejected: This request came from a page on another site/);
    // The page's own origin may (control).
    assert.equal((await upgrade(url)).status, 101);
  });

  t.test("/chat namespace: message is broadcast as {user, text} to everyone in it", async () => {
    const [ada, bob] = [await login(url, "ada"), await login(url, "bob")];
    const a = connect(url, "/chat", { transports: ["websocket"], extraHeaders: { cookie: ada } });
    const b = connect(url, "/chat", { transports: ["polling"], extraHeaders: { cookie: bob } });
    await Promise.all([connected(a), connected(b)]);
    const atB = once(b, "message");
    const atA = once(a, "message");
    a.emit("message", "hello from ada");
    assert.deepEqual((await atA)[0], { user: "ada", text: "hello from ada" }, "at the sender");
    assert.deepEqual((await atB)[0], { user: "ada", text: "hello from ada" }, "at the other user");
    assert.equal((await a.timeout(5000).emitWithAck("whoami")).user, "ada");
  });

  t.test("r09 logout over HTTP disconnects every socket of that session, on every namespace", async () => {
    const cookie = await login(url, "leaving");
    const other = await login(url, "staying");
    const s1 = connect(url, "/", { transports: ["polling"], extraHeaders: { cookie } });
    const s2 = connect(url, "/chat", { transports: ["websocket"], extraHeaders: { cookie } });
    const s3 = connect(url, "/chat", { transports: ["websocket"], extraHeaders: { cookie: other } });
    await Promise.all([connected(s1), connected(s2), connected(s3)]);
    const d1 = once(s1, "disconnect");
    const d2 = once(s2, "disconnect");
    const res = await fetch(url + "/logout", { method: "POST", headers: { cookie }, redirect: "manual" });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("set-cookie") || "", /^connect\.sid=;/);
    assert.equal((await d1)[0], "io server disconnect");
    assert.equal((await d2)[0], "io server disconnect");
    // The other session's socket stays connected and working.
    assert.equal(s3.connected, true);
    assert.equal((await s3.timeout(5000).emitWithAck("whoami")).user, "staying");
    // The old cookie no longer opens anything.
    const api = await get(url, "/api/session", cookie);
    assert.equal(api.status, 401);
    assert.equal((await api.json()).error, "session_not_found");
    const again = connect(url, "/", { transports: ["websocket"], extraHeaders: { cookie } });
    assert.match((await rejected(again)).message, /^session_not_found: /);
  });

  t.test("GET /api/session without a cookie is a 401 JSON error", async () => {
    const res = await get(url, "/api/session");
    assert.equal(res.status, 401);
    assert.match(res.headers.get("content-type") || "", /application\/json/);
    const body = await res.json();
    assert.equal(body.error, "no_cookie_header");
    assert.ok(body.message.length > 10);
  });

  t.test("r39 20,000 engine.io opens without a cookie grow the chat by under 40 MB", async () => {
    const http = require("node:http");
    const fs = require("node:fs");
    const rss = () => Number(fs.readFileSync(`/proc/${chat.child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    const open = (i) => new Promise((resolve, reject) => {
      http.get(`${url}/socket.io/?EIO=4&transport=polling&t=${i}`, { agent }, (res) => {
        let body = "";
        res.on("data", (d) => { body += d; });
        res.on("end", () => resolve({ status: res.statusCode, body }));
      }).on("error", reject);
    });
    const first = await open(0);
    assert.equal(first.status, 200);
    assert.match(first.body, /^0\{"sid":"refused"/);
    assert.match(first.body, /\u001e44\{"message":"no_cookie_header: /);
    const before = rss();
    let next = 1;
    const worker = async () => {
      while (next <= 20000) {
        const res = await open(next++);
        if (res.status !== 200 || !res.body.includes('"sid":"refused"')) throw new Error(`open ${next}: ${res.status} ${res.body}`);
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    agent.destroy();
    const grown = rss() - before;
    console.log(`     20,000 refused opens: RSS ${(before / 2 ** 20).toFixed(1)} -> ${(rss() / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(grown < 40 * 2 ** 20, `grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
  }, 60000);

  t.test("GET / serves the login form without a session and the chat page with one", async () => {
    const anon = await (await get(url, "/")).text();
    assert.match(anon, /action="\/login"/);
    const cookie = await login(url, "viewer");
    const page = await (await get(url, "/", cookie)).text();
    assert.match(page, /js\/socket\.io\.min\.js/);
    assert.match(page, /action="\/logout"/);
  });

  t.test("r33 GET /js/socket.io.min.js serves the vendored client from the binary", async () => {
    const res = await fetch(url + "/js/socket.io.min.js", { redirect: "manual" });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") || "", /javascript/);
    assert.match(await res.text(), /Socket\.IO v4\.8\.1/);
  });

  const ok = await t.run();
  if (!ok) console.log(`chat output:\n${chat.output()}`);
  for (const s of sockets) s.disconnect();
  chat.child.kill();
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
