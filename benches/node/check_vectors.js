#!/usr/bin/env node
'use strict';

// Check resolve.js against the recorded express-session vectors.
//
//   node check_vectors.js [path/to/express-session-cookies.json]
//
// Default path: $SESSION_VECTORS, else the repository's copy,
// tests/data/express-session-cookies.json.
// Each vector is checked three ways: in-process, through `node resolve.js`
// (stdin bytes + flags), and through one `node resolve.js --batch` run.
// Exits non-zero on any mismatch; prints "N passed, M failed".

var fs = require('fs');
var path = require('path');
var childProcess = require('child_process');
var resolver = require('./resolve.js');

var RESOLVE = path.join(__dirname, 'resolve.js');

var file = process.argv[2] || process.env.SESSION_VECTORS ||
  path.resolve(__dirname, '../../tests/data/express-session-cookies.json');
var doc = JSON.parse(fs.readFileSync(file, 'utf8'));
var vectors = Array.isArray(doc) ? doc : doc.vectors;
if (!Array.isArray(vectors) || vectors.length === 0) {
  console.error('no vectors in ' + file);
  process.exit(2);
}

function expectedOf(v) {
  return { ok: v.expected.ok, sid: v.expected.sid, reason: v.expected.reason };
}

function same(a, b) {
  return a.ok === b.ok && a.sid === b.sid && a.reason === b.reason;
}

function runResolve(args, input) {
  var r = childProcess.spawnSync(process.execPath, [RESOLVE].concat(args), { input: input });
  if (r.status !== 0) {
    throw new Error('resolve.js exited ' + r.status + ': ' + r.stderr.toString());
  }
  return r.stdout.toString('utf8');
}

// One batch run over every vector.
var batchInput = vectors.map(function (v) {
  return JSON.stringify({ id: v.id, secrets: v.secrets, name: v.cookie_name, lines_hex: v.cookie_headers_wire_hex });
}).join('\n') + '\n';
var batchOut = runResolve(['--batch'], Buffer.from(batchInput, 'utf8')).split('\n');
if (batchOut[batchOut.length - 1] === '') batchOut.pop();
if (batchOut.length !== vectors.length) {
  console.error('batch mode printed ' + batchOut.length + ' lines for ' + vectors.length + ' cases');
  process.exit(1);
}

var passed = 0;
var failed = 0;

vectors.forEach(function (v, i) {
  var want = expectedOf(v);
  var lines = v.cookie_headers_wire_hex.map(function (h) { return Buffer.from(h, 'hex'); });
  var problems = [];

  // In-process.
  var got;
  try {
    got = resolver.resolve(lines, v.secrets, v.cookie_name);
    if (!same(got, want)) problems.push('in-process: ' + JSON.stringify(got));
  } catch (e) {
    problems.push('in-process threw: ' + e.message);
  }

  // CLI single mode (a header value containing '\n' cannot be sent as a line).
  if (!lines.some(function (b) { return b.includes(0x0a); })) {
    var stdin = lines.length
      ? Buffer.concat(lines.map(function (b) { return Buffer.concat([b, Buffer.from('\n')]); }))
      : Buffer.alloc(0);
    var args = [];
    v.secrets.forEach(function (s) { args.push('--secret', s); });
    args.push('--name', v.cookie_name);
    try {
      var out = runResolve(args, stdin);
      var outLines = out.split('\n');
      if (outLines.length !== 2 || outLines[1] !== '') {
        problems.push('cli: expected exactly one line, got ' + JSON.stringify(out));
      } else if (!same(JSON.parse(outLines[0]), want) ||
                 outLines[0] !== JSON.stringify(want)) {
        problems.push('cli: ' + outLines[0]);
      }
    } catch (e) {
      problems.push('cli: ' + e.message);
    }
  }

  // Batch mode.
  var b = JSON.parse(batchOut[i]);
  if (b.id !== v.id || !same(b, want)) problems.push('batch: ' + batchOut[i]);

  if (problems.length === 0) {
    passed++;
  } else {
    failed++;
    console.error('FAIL ' + v.id + ': want ' + JSON.stringify(want) + '\n  ' + problems.join('\n  '));
  }
});

console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed === 0 ? 0 : 1);
