// Shared helpers for the real-client tests: start the chat binary on a free
// loopback port, log in over HTTP, count passes and failures.
"use strict";

const net = require("node:net");
const path = require("node:path");
const { spawn } = require("node:child_process");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A socket.io client socket, for messages: its namespace and transports. */
const describe = (s) => `${s.nsp} over ${s.io.opts.transports.join("+")}`;

/** Resolves once socket.io client `s` is connected; rejects on connect_error or after 8 s. */
const connected = (s) => new Promise((resolve, reject) => {
  if (s.connected) return resolve();
  const t = setTimeout(() => reject(new Error(`${describe(s)}: neither connect nor connect_error within 8 s`)), 8000);
  s.once("connect", () => { clearTimeout(t); resolve(); });
  s.once("connect_error", (e) => { clearTimeout(t); reject(new Error(`${describe(s)}: connect_error: ${e.message}`)); });
});

/** Resolves to the arguments of the next `ev` on `s`; rejects after `ms`. */
const once = (s, ev, ms = 5000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`no "${ev}" event within ${ms} ms`)), ms);
  s.once(ev, (...a) => { clearTimeout(t); resolve(a); });
});

/** Resolves to { reason, ended } once the server disconnects `s` (ended: the session_ended payload, if any). */
function ended(s, ms = 5000) {
  return new Promise((resolve, reject) => {
    let payload = null;
    s.once("session_ended", (p) => { payload = p; });
    const t = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
    s.once("disconnect", (reason) => { clearTimeout(t); resolve({ reason, ended: payload }); });
  });
}

/** Polls `fn` (resolving to { ok, value }) every 20 ms until ok; its value, or an error after `ms`. */
async function eventually(what, fn, ms = 3000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok) return last.value;
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms; last: ${JSON.stringify(last.value)}`);
    await sleep(20);
  }
}

/** The chat's `whoami` over socket `s`: the session it sees. */
const whoami = (s) => s.timeout(5000).emitWithAck("whoami");

/** The session id in an express-session cookie (`connect.sid=s%3A<id>.<signature>`). */
const sidOf = (cookie) => decodeURIComponent(cookie.split("=")[1]).slice(2).split(".").slice(0, -1).join(".");

/**
 * The interop suite's stock Express app (express-session + connect-redis,
 * examples/express-interop/node/app.js) with `env` (REDIS_URL or
 * REDIS_CLUSTER, and SECRET): { url, child } once it listens.
 */
function startExpress(env) {
  const dir = path.join(__dirname, "..", "..", "express-interop", "node");
  return new Promise((resolve, reject) => {
    const child = spawn("node", ["app.js"], { cwd: dir, env: { ...process.env, ...env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const t = setTimeout(() => { child.kill(); reject(new Error(`express did not start: ${out}`)); }, 10000);
    const on = (d) => {
      out += d;
      const m = out.match(/express listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(t); resolve({ url: m[1], child }); }
    };
    child.stdout.on("data", on);
    child.stderr.on("data", on);
  });
}

/** Logs `user` in on the Express app: its `connect.sid=...` cookie. */
async function expressLogin(url, user) {
  const res = await fetch(`${url}/login?user=${encodeURIComponent(user)}`, { method: "POST" });
  if (res.status !== 200) throw new Error(`express login: ${res.status}`);
  return (res.headers.get("set-cookie") || "").split(";")[0];
}

/** A POST to the Express app with `cookie`. */
const expressPost = (url, p, cookie) => fetch(url + p, { method: "POST", headers: { cookie } });

/** A free loopback port. */
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Sends one command in RESP over a fresh connection; resolves to the first reply line. */
function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1");
    let out = "";
    c.on("data", (d) => { out += d; if (out.includes("\r\n")) { c.destroy(); resolve(out.split("\r\n")[0]); } });
    c.on("error", reject);
    c.on("close", () => resolve(out.split("\r\n")[0]));
    c.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(""));
  });
}

/**
 * redis-server on `port` with its default settings (notify-keyspace-events
 * off), persisting to `dir` only on SHUTDOWN SAVE; resolves once it answers.
 */
async function startRedis(port, dir) {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
    "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    try { if ((await redisCommand(port, "PING")) === "+PONG") return child; } catch { /* not yet */ }
    await sleep(50);
  }
  child.kill();
  throw new Error("redis-server did not start");
}

/** Starts `bin` with `args` (plus `--port 0`) and resolves to { url, child } once it listens. */
function startChat(bin, args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["--port", "0", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SESSION_SECRET: "" },
    });
    let out = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`the chat did not report its address within 20 s; output so far:\n${out}`));
    }, 20000);
    const onData = (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], child, output: () => out });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the chat exited with ${code} before listening:\n${out}`));
    });
  });
}

/** Logs in as `name`; resolves to the `name=value` cookie pair the server set. */
async function login(url, name) {
  const res = await fetch(url + "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ name }).toString(),
    redirect: "manual",
  });
  if (res.status !== 303) throw new Error(`POST /login answered ${res.status}, expected 303`);
  const setCookie = res.headers.get("set-cookie") || "";
  const pair = setCookie.split(";")[0];
  if (!pair.startsWith("connect.sid=s%3A")) throw new Error(`unexpected Set-Cookie: ${setCookie}`);
  if (!/; HttpOnly/.test(setCookie) || !/; SameSite=Lax/.test(setCookie) || !/; Expires=/.test(setCookie)) {
    throw new Error(`the session cookie should be HttpOnly, SameSite=Lax and expire: ${setCookie}`);
  }
  return pair;
}

/** A tiny runner: runs tests in order, prints each result and "N passed, M failed". */
function runner() {
  const tests = [];
  return {
    /** Adds a test; `ms` overrides the run's per-test time limit. */
    test(name, fn, ms) { tests.push({ name, fn, ms }); },
    async run(perTestMs = 15000) {
      let passed = 0;
      let failed = 0;
      for (const { name, fn, ms } of tests) {
        let timer;
        try {
          await Promise.race([
            fn(),
            new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms || perTestMs} ms`)), ms || perTestMs); }),
          ]);
          passed++;
          console.log(`ok   ${name}`);
        } catch (e) {
          failed++;
          console.log(`FAIL ${name}\n     ${(e && e.stack) || e}`);
        } finally {
          clearTimeout(timer);
        }
      }
      console.log(`${passed} passed, ${failed} failed`);
      return failed === 0;
    },
  };
}

module.exports = { startChat, login, runner, freePort, redisCommand, startRedis, sleep, describe, connected, once, ended, eventually, whoami, sidOf, startExpress, expressLogin, expressPost };
