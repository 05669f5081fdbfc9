#!/usr/bin/env node
'use strict';

// Micro benchmark of express-session 1.19.0's session-id cookie path:
// cookie.parse(header) + the 's:' prefix check + cookie-signature unsign over
// the secrets list (one secret, "keyboard cat"), exactly as getcookie() in
// node_modules/express-session/index.js does it for a request that carries
// a Cookie header.
//
//   node express_path_bench.js [--rounds N] [--iters N]
//
// The Cookie header is read from header.txt (the same bytes the Rust benches
// use) and handed to the path as a latin1 string, as Node's HTTP parser would.
// Prints one JSON line: {"name":"express_path","ns_per_op":<median>,"rounds":[...]}

var fs = require('fs');
var path = require('path');
var cookie = require('cookie');
var signature = require('cookie-signature');

var EXPECTED_HEADER =
  '_ga=GA1.1.1234567890.1700000000; theme=dark; _gid=GA1.1.987654321.1700000000; ' +
  'csrftoken=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3A; ' +
  'connect.sid=s%3AOk2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v.CHTwR3T0Ul1x3nYQMRDJEyvuxBnFCcqSwIbARnurjoI; ' +
  'lang=en-US; ' +
  'prefs=%7B%22tz%22%3A%22Europe%2FBerlin%22%2C%22compact%22%3Atrue%2C%22beta%22%3Afalse%7D';
var EXPECTED_SID = 'Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v';
var NAME = 'connect.sid';
var SECRETS = ['keyboard cat'];

function parseArgs(argv) {
  var o = { rounds: 7, iters: 200000, warmup: 100000 };
  for (var i = 0; i < argv.length; i++) {
    var m = /^--(rounds|iters|warmup)(?:=(\d+))?$/.exec(argv[i]);
    if (!m) throw new Error('unknown argument ' + JSON.stringify(argv[i]));
    var v = m[2] !== undefined ? m[2] : argv[++i];
    if (!/^\d+$/.test(v || '')) throw new Error('--' + m[1] + ' needs a positive integer');
    o[m[1]] = Number(v);
  }
  if (o.rounds < 1 || o.iters < 1) throw new Error('--rounds and --iters must be >= 1');
  return o;
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

// The header part of express-session 1.19.0 getcookie(), verbatim apart from
// the debug() calls and the cookieParser back-compat branches.
function getcookie(header, name, secrets) {
  var raw;
  var val;

  if (header) {
    var cookies = cookie.parse(header);

    raw = cookies[name];

    if (raw) {
      if (raw.substr(0, 2) === 's:') {
        val = unsigncookie(raw.slice(2), secrets);

        if (val === false) {
          val = undefined;
        }
      }
    }
  }

  return val;
}

function median(xs) {
  var s = xs.slice().sort(function (a, b) { return a - b; });
  var n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function round1(x) {
  return Math.round(x * 10) / 10;
}

function main() {
  var opts = parseArgs(process.argv.slice(2));

  var bytes = fs.readFileSync(path.join(__dirname, 'header.txt'));
  var header = bytes.toString('latin1');
  if (header !== EXPECTED_HEADER) {
    throw new Error('header.txt does not hold the benchmark header');
  }
  if (bytes.length < 380 || bytes.length > 420) {
    throw new Error('header is ' + bytes.length + ' bytes, want 380..420');
  }

  // The path must resolve the expected sid, both here and through the
  // resolve.js checker (replica + real express-session middleware).
  var got = getcookie(header, NAME, SECRETS);
  if (got !== EXPECTED_SID) {
    throw new Error('express path resolved ' + JSON.stringify(got) + ', want ' + EXPECTED_SID);
  }
  var v = require('./resolve.js').resolve([bytes], SECRETS, NAME);
  if (!v.ok || v.sid !== EXPECTED_SID) {
    throw new Error('resolve.js says ' + JSON.stringify(v));
  }

  var sink = 0;

  // Warm up (lets V8 optimise the whole path).
  for (var w = 0; w < opts.warmup; w++) {
    sink += getcookie(header, NAME, SECRETS).length;
  }

  var rounds = [];
  for (var r = 0; r < opts.rounds; r++) {
    var t0 = process.hrtime.bigint();
    for (var i = 0; i < opts.iters; i++) {
      sink += getcookie(header, NAME, SECRETS).length;
    }
    var t1 = process.hrtime.bigint();
    rounds.push(Number(t1 - t0) / opts.iters);
  }

  if (sink !== (opts.warmup + opts.rounds * opts.iters) * EXPECTED_SID.length) {
    throw new Error('unexpected result during timing');
  }

  process.stdout.write(JSON.stringify({
    name: 'express_path',
    ns_per_op: round1(median(rounds)),
    rounds: rounds.map(round1)
  }) + '\n');
}

main();
