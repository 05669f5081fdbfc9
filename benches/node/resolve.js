#!/usr/bin/env node
'use strict';

// Resolve the session id that express-session 1.19.0 reads from a request's
// Cookie header(s), and say why when it reads none.
//
//   node resolve.js --secret S [--secret S2 ...] [--name NAME] < cookie-lines
//   node resolve.js --batch [--secret S ...] [--name NAME] < cases.jsonl
//
// Single mode: stdin is raw bytes, one Cookie header value per line (split on
// '\n'; a trailing '\n' ends the last line; empty stdin means the request had
// no Cookie header). Prints one JSON line:
//   {"ok":true|false,"sid":"..."|null,"reason":"..."}
//
// Batch mode: stdin is JSON lines {"secrets":[...],"name":"...","lines_hex":[...]}
// ("name" defaults to --name or connect.sid, "secrets" to the --secret flags,
// "lines_hex" to [] i.e. no Cookie header; an optional "id" is echoed back).
// Blank input lines are skipped. All of stdin is read before anything is
// written, so a caller may write every case, close stdin, then read. One
// verdict line is printed per case, in input order.
//
// Every verdict is computed twice and the two must agree, or the script exits
// with status 3:
//   1. a line-for-line replica of express-session's getcookie()/unsigncookie()
//      (not exported) over the real cookie and cookie-signature modules, which
//      also yields the reason;
//   2. the real express-session middleware, called with a stub request whose
//      sessionID setter records the first value assigned, which is exactly
//      what getcookie() returned.

var path = require('path');
var cookie = require('cookie');
var signature = require('cookie-signature');
var session = require('express-session');

// express-session must use the very same cookie / cookie-signature copies
// (package-lock pins them and npm dedupes them).
(function assertSameModules() {
  var esDir = path.dirname(require.resolve('express-session'));
  var fromEs = function (m) { return require.resolve(m, { paths: [esDir] }); };
  if (fromEs('cookie') !== require.resolve('cookie') ||
      fromEs('cookie-signature') !== require.resolve('cookie-signature')) {
    throw new Error('express-session resolves a different cookie/cookie-signature copy; run `npm ci`');
  }
  var versions = {
    'cookie': '0.7.2',
    'cookie-signature': '1.0.7',
    'express-session': '1.19.0'
  };
  Object.keys(versions).forEach(function (m) {
    var v = require(m + '/package.json').version;
    if (v !== versions[m]) {
      throw new Error(m + ' is ' + v + ', expected ' + versions[m] + '; run `npm ci`');
    }
  });
})();

var DEFAULT_NAME = 'connect.sid';

// express-session: `var name = opts.name || opts.key || 'connect.sid'`
function effectiveName(name) {
  return name || DEFAULT_NAME;
}

// Node's HTTP parser hands header values to JS as latin1 strings, and joins
// repeated Cookie headers with '; ' (IncomingMessage#_addHeaderLine).
// Returns undefined when there is no Cookie header at all.
function headerFromLines(lines) {
  if (lines.length === 0) return undefined;
  return lines.map(function (b) { return Buffer.from(b).toString('latin1'); }).join('; ');
}

// Replica of express-session 1.19.0 getcookie() (index.js) for a request
// without cookieParser data, annotated with the reason.
function replica(header, secrets, name) {
  if (header === undefined) return verdict(undefined, 'no_cookie_header');

  var cookies = {};
  // `if (header)`: an empty Cookie header is not parsed at all.
  if (header) cookies = cookie.parse(header);

  var raw = cookies[name];

  if (!Object.prototype.hasOwnProperty.call(cookies, name)) {
    // Absent names that collide with Object.prototype members ("toString",
    // "constructor", "__proto__", ...) yield a truthy non-string `raw`, and
    // express-session's raw.substr(...) throws a TypeError (a 500 in express).
    if (header && raw) return verdict(undefined, 'express_throws');
    return verdict(undefined, 'cookie_absent');
  }

  // `if (raw)`
  if (!raw) return verdict(undefined, 'empty_value');

  // `if (raw.substr(0, 2) === 's:')`
  if (raw.substr(0, 2) !== 's:') return verdict(undefined, 'unsigned');

  // `val = unsigncookie(raw.slice(2), secrets)`
  var val = unsigncookie(raw.slice(2), secrets);
  if (val === false) return verdict(undefined, 'signature_invalid');

  // getcookie returns '' here; the middleware's `if (!req.sessionID)` then
  // generates a new session.
  if (val === '') return verdict('', 'signed_empty_sid');

  return verdict(val, 'ok');
}

function verdict(getcookieResult, reason) {
  return { getcookie: getcookieResult, reason: reason };
}

// express-session 1.19.0 unsigncookie(), verbatim.
function unsigncookie(val, secrets) {
  for (var i = 0; i < secrets.length; i++) {
    var result = signature.unsign(val, secrets[i]);

    if (result !== false) {
      return result;
    }
  }

  return false;
}

// ---------------------------------------------------------------------------
// The real middleware.

function NullStore() {
  session.Store.call(this);
}
Object.setPrototypeOf(NullStore.prototype, session.Store.prototype);
NullStore.prototype.get = function () {};       // never calls back: we stop here
NullStore.prototype.set = function (sid, sess, cb) { if (cb) cb(); };
NullStore.prototype.destroy = function (sid, cb) { if (cb) cb(); };

var middlewares = new Map();

function middlewareFor(secrets, name) {
  var key = JSON.stringify([secrets, name]);
  var mw = middlewares.get(key);
  if (!mw) {
    mw = session({
      secret: secrets.slice(),
      name: name,
      store: new NullStore(),
      resave: false,
      saveUninitialized: false,
      genid: function () { return 'generated-by-express-session'; }
    });
    middlewares.set(key, mw);
  }
  return mw;
}

// Returns { threw: bool, getcookie: <first value assigned to req.sessionID> }.
function realMiddleware(header, secrets, name) {
  var headers = {};
  if (header !== undefined) headers.cookie = header;
  var req = { method: 'GET', url: '/', originalUrl: '/', headers: headers };
  var assigned = false;
  var first;
  var current;
  Object.defineProperty(req, 'sessionID', {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (v) {
      if (!assigned) { assigned = true; first = v; }
      current = v;
    }
  });
  var res = {
    writeHead: function () {},
    setHeader: function () {},
    getHeader: function () {},
    write: function () { return true; },
    end: function () {}
  };
  var nextErr;
  try {
    middlewareFor(secrets, name)(req, res, function (err) { nextErr = err; });
  } catch (e) {
    return { threw: true, error: e };
  }
  if (nextErr) throw new Error('express-session middleware called next(err): ' + nextErr.message);
  if (!assigned) throw new Error('express-session middleware never assigned req.sessionID');
  return { threw: false, getcookie: first };
}

// ---------------------------------------------------------------------------

// lines: array of Buffers (Cookie header values); secrets: non-empty array of
// strings; name: cookie name (falsy means connect.sid).
function resolve(lines, secrets, name) {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    // express-session: 'secret option array must contain one or more strings'
    throw new TypeError('at least one secret is required');
  }
  secrets.forEach(function (s) {
    if (typeof s !== 'string') throw new TypeError('secrets must be strings');
  });
  name = effectiveName(name);
  var header = headerFromLines(lines);
  var r = replica(header, secrets, name);
  var m = realMiddleware(header, secrets, name);

  var agree = r.reason === 'express_throws'
    ? m.threw
    : !m.threw && m.getcookie === r.getcookie;
  if (!agree) {
    var err = new Error('replica and express-session middleware disagree: ' +
      JSON.stringify({ header: header, name: name, replica: r,
        middleware: m.threw ? 'threw ' + m.error : m.getcookie }));
    err.code = 'DISAGREE';
    throw err;
  }

  var ok = r.reason === 'ok';
  return { ok: ok, sid: ok ? r.getcookie : null, reason: r.reason };
}

// Split raw stdin bytes into lines: split on '\n', a trailing '\n' ends the
// last line, no bytes means no lines. '\r' is kept as data.
function splitLines(buf) {
  var lines = [];
  if (buf.length === 0) return lines;
  var start = 0;
  for (;;) {
    var nl = buf.indexOf(0x0a, start);
    if (nl === -1) {
      lines.push(buf.subarray(start));
      break;
    }
    lines.push(buf.subarray(start, nl));
    start = nl + 1;
    if (start === buf.length) break;
  }
  return lines;
}

function decodeHex(h, where) {
  if (typeof h !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(h)) {
    throw new TypeError(where + ': not an even-length hex string');
  }
  return Buffer.from(h, 'hex');
}

function formatVerdict(v, id) {
  var out = { ok: v.ok, sid: v.sid, reason: v.reason };
  if (id !== undefined) out = { id: id, ok: v.ok, sid: v.sid, reason: v.reason };
  return JSON.stringify(out);
}

function runBatch(input, defaults) {
  var text = input.toString('utf8');
  var rows = text.split('\n');
  var out = [];
  for (var i = 0; i < rows.length; i++) {
    var row = rows[i];
    if (/^\s*$/.test(row)) continue;
    var where = 'batch line ' + (i + 1);
    var c;
    try {
      c = JSON.parse(row);
    } catch (e) {
      throw new TypeError(where + ': invalid JSON: ' + e.message);
    }
    if (c === null || typeof c !== 'object' || Array.isArray(c)) {
      throw new TypeError(where + ': expected a JSON object');
    }
    var secrets = c.secrets !== undefined ? c.secrets : defaults.secrets;
    var name = c.name !== undefined && c.name !== null ? c.name : defaults.name;
    if (typeof name !== 'string') throw new TypeError(where + ': name must be a string');
    var hex = c.lines_hex !== undefined && c.lines_hex !== null ? c.lines_hex : [];
    if (!Array.isArray(hex)) throw new TypeError(where + ': lines_hex must be an array');
    var lines = hex.map(function (h, j) { return decodeHex(h, where + ' lines_hex[' + j + ']'); });
    var v;
    try {
      v = resolve(lines, secrets, name);
    } catch (e) {
      if (e.code !== 'DISAGREE') e.message = where + ': ' + e.message;
      throw e;
    }
    out.push(formatVerdict(v, c.id));
  }
  return out.length ? out.join('\n') + '\n' : '';
}

function usage(msg) {
  if (msg) process.stderr.write('resolve.js: ' + msg + '\n');
  process.stderr.write(
    'usage: node resolve.js --secret S [--secret S2 ...] [--name NAME] < cookie-header-lines\n' +
    '       node resolve.js --batch [--secret S ...] [--name NAME] < cases.jsonl\n');
  process.exit(2);
}

function parseArgs(argv) {
  var opts = { secrets: [], name: DEFAULT_NAME, batch: false };
  for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    var m = /^(--secret|--name)=([\s\S]*)$/.exec(a);
    if (m) {
      if (m[1] === '--secret') opts.secrets.push(m[2]); else opts.name = m[2];
    } else if (a === '--secret' || a === '--name') {
      if (i + 1 >= argv.length) usage(a + ' needs a value');
      if (a === '--secret') opts.secrets.push(argv[++i]); else opts.name = argv[++i];
    } else if (a === '--batch') {
      opts.batch = true;
    } else if (a === '-h' || a === '--help') {
      usage();
    } else {
      usage('unknown argument ' + JSON.stringify(a));
    }
  }
  if (!opts.batch && opts.secrets.length === 0) usage('at least one --secret is required');
  return opts;
}

function main() {
  var opts = parseArgs(process.argv.slice(2));
  var chunks = [];
  process.stdin.on('data', function (c) { chunks.push(c); });
  process.stdin.on('end', function () {
    var input = Buffer.concat(chunks);
    try {
      var output = opts.batch
        ? runBatch(input, { secrets: opts.secrets.length ? opts.secrets : undefined, name: opts.name })
        : formatVerdict(resolve(splitLines(input), opts.secrets, opts.name)) + '\n';
      process.stdout.write(output);
    } catch (e) {
      process.stderr.write('resolve.js: ' + (e && e.message) + '\n');
      process.exitCode = e && e.code === 'DISAGREE' ? 3 : 2;
    }
  });
}

module.exports = {
  resolve: resolve,
  splitLines: splitLines,
  headerFromLines: headerFromLines
};

if (require.main === module) main();
