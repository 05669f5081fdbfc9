// R33: the socket.io browser client the chat serves (vendored under
// assets/vendor/socket.io-client) is byte for byte the dist file of the npm
// package pinned in package-lock.json. `npm ci` installs that package only
// if its tarball matches the lockfile's integrity hash, so comparing with
// node_modules checks the vendored copy against the lockfile.
// Usage: node tests/vendor.test.js   (after `npm ci` in examples/chat)
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const read = (...p) => fs.readFileSync(path.join(root, ...p));
const sha384 = (b) => crypto.createHash("sha384").update(b).digest("base64");

let failed = 0;
function check(name, fn) {
  try {
    fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${e.message}`);
  }
}

const lock = JSON.parse(read("package-lock.json"));
const entry = lock.packages["node_modules/socket.io-client"];
const installed = JSON.parse(read("node_modules", "socket.io-client", "package.json"));

check("r33 the lockfile pins socket.io-client with an integrity hash, and npm ci installed that version", () => {
  assert.ok(entry, "package-lock.json has no node_modules/socket.io-client");
  assert.match(entry.integrity, /^sha512-/);
  assert.equal(installed.version, entry.version);
  assert.equal(JSON.parse(read("package.json")).dependencies["socket.io-client"], entry.version, "pinned exactly");
});

check("r33 the vendored client is the installed package's dist/socket.io.min.js, byte for byte", () => {
  const vendored = read("assets", "vendor", "socket.io-client", "socket.io.min.js");
  const dist = read("node_modules", "socket.io-client", "dist", "socket.io.min.js");
  assert.equal(sha384(vendored), sha384(dist));
  assert.match(vendored.subarray(0, 40).toString(), new RegExp(`Socket\\.IO v${entry.version.replace(/\./g, "\\.")}`));
});

check("r33 the package's license travels with the vendored copy", () => {
  assert.equal(
    sha384(read("assets", "vendor", "socket.io-client", "LICENSE")),
    sha384(read("node_modules", "socket.io-client", "LICENSE")),
  );
});

console.log(`${3 - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
