// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// against the chat binary: sign in through the form, send a message, see it
// arrive in a second user's page, and save a screenshot for the README.
// Usage: node tests/browser.test.js <path to the chat binary> [screenshot path]
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const http = require("node:http");
const { chromium } = require("playwright-core");
const { startChat, runner } = require("./harness");

const bin = process.argv[2];
const shot = process.argv[3] || path.join(__dirname, "..", "..", "..", "docs", "chat.png");
if (!bin) {
  console.error("usage: node tests/browser.test.js <path to the chat binary> [screenshot path]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

async function main() {
  const chat = await startChat(bin, ["--secret", "browser test secret"]);
  const { url } = chat;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chat-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 760, height: 640 },
    args: [
      "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
  });
  // A second, isolated browser context for the other user (own cookie jar).
  const browser2 = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  const t = runner();
  const ada = context.pages()[0] || (await context.newPage());
  const grace = await (await browser2.newContext({ viewport: { width: 760, height: 640 } })).newPage();
  const pageErrors = [];
  // What the chat's own pages log as errors: a Content-Security-Policy
  // violation (an inline script, a blocked connection) shows up here.
  const consoleErrors = [];
  // The WebSockets the pages open (socket.io upgrades from polling).
  const websockets = [];
  for (const p of [ada, grace]) {
    p.on("pageerror", (e) => pageErrors.push(String(e)));
    p.on("console", (m) => {
      // The chat has no favicon: Chromium's request for one is a 404, not a violation.
      if (m.type() !== "error" || m.location().url === url + "/favicon.ico") return;
      consoleErrors.push(`${p.url()}: ${m.text()} (${m.location().url})`);
    });
    p.on("websocket", (ws) => {
      const seen = { url: ws.url(), received: 0 };
      ws.on("framereceived", () => { seen.received++; });
      websockets.push(seen);
    });
  }

  async function signIn(page, name) {
    await page.goto(url + "/");
    await page.fill('input[name="name"]', name);
    await Promise.all([page.waitForURL(url + "/"), page.click('button[type="submit"]')]);
    await page.waitForSelector("#status.on", { timeout: 10000 });
    assert.match(await page.textContent("#status"), new RegExp(`connected as ${name}`));
  }

  t.test("sign in through the form: the page's socket connects with the session", async () => {
    await signIn(ada, "Ada");
    await signIn(grace, "Grace");
    const cookies = await context.cookies(url);
    const sid = cookies.find((c) => c.name === "connect.sid");
    assert.ok(sid, "connect.sid cookie set");
    assert.equal(sid.httpOnly, true, "the session cookie is HttpOnly");
    assert.equal(sid.sameSite, "Lax", "the session cookie is SameSite=Lax");
  });

  t.test("send a message: it appears in both pages with the sender's name", async () => {
    await ada.fill("#text", "Hello Grace, the socket knows who I am.");
    await ada.press("#text", "Enter");
    for (const p of [ada, grace]) {
      await p.waitForSelector('#log li:has-text("Hello Grace, the socket knows who I am.")', { timeout: 10000 });
    }
    assert.equal(await grace.textContent("#log li:last-child b"), "Ada");
    await grace.fill("#text", "Hi Ada! Same session over HTTP and socket.io.");
    await grace.click('#send button[type="submit"]');
    await ada.waitForSelector('#log li:has-text("Same session over HTTP")', { timeout: 10000 });
  });

  t.test("incr from the page is saved in the session (GET /api/session agrees)", async () => {
    for (let i = 1; i <= 3; i++) {
      await ada.click("#incr");
      await ada.waitForFunction((n) => document.getElementById("counter").value === String(n), i);
    }
    const api = await ada.evaluate(async () => (await fetch("/api/session")).json());
    assert.equal(api.user, "Ada");
    assert.equal(api.counter, 3);
  });

  t.test("r33 the socket.io client comes from the binary, pinned by its integrity hash, no page errors", async () => {
    const res = await ada.request.get(url + "/js/socket.io.min.js", { maxRedirects: 0 });
    assert.equal(res.status(), 200);
    const tag = await ada.getAttribute('script[src="/js/socket.io.min.js"]', "integrity");
    assert.match(tag || "", /^sha384-/);
    const digest = "sha384-" + require("node:crypto").createHash("sha384").update(await res.body()).digest("base64");
    assert.equal(tag, digest, "the served client matches the page's integrity attribute");
    assert.deepEqual(pageErrors, []);
  });

  t.test("the Content-Security-Policy holds: no violation reported, socket.io upgraded to a same-origin WebSocket", async () => {
    const csp = (await ada.request.get(url + "/")).headers()["content-security-policy"] || "";
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    const socketio = url.replace(/^http:/, "ws:") + "/socket.io/?EIO=4&transport=websocket";
    const upgraded = websockets.filter((w) => w.url.startsWith(socketio) && w.received > 0);
    assert.ok(upgraded.length >= 2, `each page's socket runs over a WebSocket: ${JSON.stringify(websockets)}`);
    assert.deepEqual(consoleErrors, [], "no errors (CSP violations included) in the pages' consoles");
    assert.deepEqual(pageErrors, []);
  });

  // Another site's page that submits a form to the chat as soon as it loads
  // (`/?to=PATH`), or frames the chat (`/frame`).
  const evil = http.createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    if (u.pathname === "/frame") {
      res.end(`<!doctype html><iframe name="chat" src="${url}/" width="600" height="400"></iframe>`);
      return;
    }
    const target = u.searchParams.get("to") || "/login";
    res.end(`<!doctype html><form method="post" action="${url}${target}">
      <input name="name" value="Mallory"></form><script>document.forms[0].submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilPort = evil.address().port;
  for (const [label, origin] of [
    ["another site (localhost)", `http://localhost:${evilPort}`],
    ["another origin of the same site (127.0.0.1, other port)", `http://127.0.0.1:${evilPort}`],
  ]) {
    t.test(`r26 a page on ${label} auto-submitting login, logout and incr forms gets 403; Ada stays Ada`, async () => {
      const before = await ada.evaluate(async () => (await fetch("/api/session")).json());
      assert.equal(before.user, "Ada");
      const tab = await context.newPage();
      for (const to of ["/login", "/logout", "/api/incr"]) {
        const [res] = await Promise.all([
          tab.waitForResponse((r) => r.url() === url + to, { timeout: 10000 }),
          tab.goto(`${origin}/?to=${encodeURIComponent(to)}`),
        ]);
        assert.equal(res.status(), 403, `${to} from ${origin}`);
        // `/api/*` answers JSON (R35); the form routes, text.
        const body = await res.text();
        const reason = to.startsWith("/api/") ? JSON.parse(body).error : body.split(": ")[0];
        assert.equal(reason, "origin_rejected", to);
      }
      await tab.close();
      const after = await ada.evaluate(async () => (await fetch("/api/session")).json());
      assert.deepEqual(after, before, "the session is unchanged");
      assert.match(await ada.textContent("#status"), /connected as Ada/);
    });
  }

  t.test("clickjacking: another site's page cannot frame the chat (frame-ancestors 'none', X-Frame-Options DENY)", async () => {
    const tab = await context.newPage();
    const refused = [];
    tab.on("console", (m) => { if (/frame-ancestors|X-Frame-Options/.test(m.text())) refused.push(m.text()); });
    const [res] = await Promise.all([
      tab.waitForResponse((r) => r.url() === url + "/", { timeout: 10000 }),
      tab.goto(`http://localhost:${evilPort}/frame`),
    ]);
    assert.equal(res.status(), 200, "the chat answered the framed request");
    await tab.waitForTimeout(500);
    const frame = tab.frame({ name: "chat" });
    assert.ok(frame, "the frame exists");
    // Chromium shows its own error page in the frame instead of the chat.
    assert.notEqual(frame.url(), url + "/");
    assert.equal(await frame.$("#log"), null, "the chat page is not in the frame");
    assert.ok(refused.length > 0, "Chromium reported the refusal");
    await tab.close();
    assert.match(await ada.textContent("#status"), /connected as Ada/);
  });

  t.test("screenshot of the chat page", async () => {
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await ada.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 5000);
    console.log(`     screenshot: ${path.relative(process.cwd(), shot)}`);
  });

  t.test("sign out: the page's socket is disconnected and the login form is back", async () => {
    await Promise.all([ada.waitForURL(url + "/"), ada.click('form[action="/logout"] button')]);
    await ada.waitForSelector('input[name="name"]', { timeout: 10000 });
    // Grace is still connected.
    assert.match(await grace.textContent("#status"), /connected as Grace/);
  });

  const ok = await t.run(30000);
  await context.close();
  await browser2.close();
  evil.close();
  chat.child.kill();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
