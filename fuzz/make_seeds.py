#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the shared
express-session vectors (tests/data/express-session-cookies.json) and the
benchmark header (benches/node/header.txt). Idempotent; run from anywhere:

    python3 fuzz/make_seeds.py

The byte formats are documented at the top of each fuzz target.
"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROTATION = ["new secret 2024", "old secret 2023"]

with open(os.path.join(ROOT, "tests/data/express-session-cookies.json")) as f:
    data = json.load(f)
with open(os.path.join(ROOT, "benches/node/header.txt"), "rb") as f:
    bench_header = f.read()

corpus = {t: {} for t in ["cookie_parse", "verify", "record", "handshake", "differential_cookie", "save", "events", "formats"]}

cases = []
for v in data["vectors"]:
    lines = [bytes.fromhex(h) for h in v["cookie_headers_wire_hex"]]
    cases.append((v["id"], lines, v["secrets"], v["expected"]))
cases.append(("bench_header", [bench_header], ["keyboard cat"],
              {"sid": "Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v", "ok": True}))

# Happy path: feed, drain, reply Found(live record) to the Load at +0.5 s,
# poll the outcome. Then: timeout past the deadline; a wrong id then the
# right one; a duplicate reply; a Conflict (wrong kind); an expired record.
SCRIPTS = {
    "found": bytes([0, 1, 2, 0, 0, 0, 10, 4]),
    "timeout": bytes([0, 1, 3, 200, 4]),
    "wrong_id": bytes([0, 1, 2, 7, 0, 0, 10, 2, 0, 2, 10, 4]),
    "duplicate": bytes([0, 1, 2, 0, 0, 2, 10, 2, 0, 0, 0, 10, 4, 4]),
    "conflict": bytes([0, 1, 2, 0, 6, 0, 10, 4]),
    "expired": bytes([0, 1, 2, 0, 0, 1, 10, 4]),
    "late": bytes([0, 1, 2, 0, 0, 0, 100, 4, 5]),
}

for name, lines, secrets, expected in cases:
    sel = 0x10 if secrets == ROTATION else 0
    corpus["cookie_parse"][name] = bytes([sel]) + b"\n".join(lines)
    for lim in (1, 2, 3):
        corpus["cookie_parse"][f"{name}_limits{lim}"] = bytes([sel | lim]) + b"\n".join(lines)
    for i, line in enumerate(lines):
        corpus["differential_cookie"][f"{name}_{i}"] = line
    if expected.get("ok"):
        sid = expected["sid"].encode()
        corpus["verify"][name] = bytes([3, 0, 1]) + sid + b"\0" + b"\0".join(s.encode() for s in secrets)
    if secrets == ["keyboard cat"]:
        head = b"host:127.0.0.1:3000\n" + b"\n".join(b"cookie:" + l for l in lines)
        for sname, script in SCRIPTS.items():
            corpus["handshake"][f"{name}_{sname}"] = head + b"\0" + script
        corpus["handshake"][f"{name}_origin"] = (
            b"host:127.0.0.1:3000\norigin:https://evil.example\n"
            + b"\n".join(b"cookie:" + l for l in lines) + b"\0" + SCRIPTS["found"])

# Signed strings as the verify input itself (unsign of arbitrary input).
corpus["verify"]["signed_input"] = (
    bytes([40, 0, 4])
    + b"Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v.CHTwR3T0Ul1x3nYQMRDJEyvuxBnFCcqSwIbARnurjoI")
corpus["verify"]["dotted_sid"] = bytes([9, 0, 2]) + b"a.b.c\0tobiiscool\0keyboard cat"
corpus["verify"]["empty_sid"] = bytes([0, 0, 1]) + b"\0keyboard cat"

for i, rec in enumerate(data["session_records"]):
    corpus["record"][f"session_record_{i + 1}"] = rec["redis_value"].encode()
corpus["record"]["integer_keys"] = (
    b'{"b":1,"10":2,"cookie":{"zz":1,"path":"/","expires":null},"a":{"2":0,"1":0},"01":3,"n":1.5e-7,"big":1e21}')
# Found by the record target: needs correctly rounded float parsing.
corpus["record"]["long_decimal"] = b'{"cookie":{},"n":' + b"2" * 67 + b'1.015e-7}'
corpus["record"]["escapes"] = b'{"cookie":{"expires":"2000-02-29T01:00:00+01:00"},"s":"\\u0000\\u2028\\ud83d\\ude00\\"","f":-0.0}'

# save: selector (record, update closure, bad id), edits, then a script:
# drain, then replies to the last request: Swapped; Conflict with each
# record then Swapped; Gone; Failed; a wrong id; too late.
SAVE_SCRIPTS = {
    "swapped": bytes([1, 2, 0, 5, 10, 4]),
    "conflict_then_swapped": bytes([1, 2, 0, 6, 2, 10, 1, 2, 0, 5, 20, 4]),
    "conflict_malformed": bytes([1, 2, 0, 6, 4, 10, 4]),
    "conflict_storm": bytes([1, 2, 0, 6, 0, 1] * 10 + [4]),
    "gone": bytes([1, 2, 0, 7, 10, 4]),
    "failed": bytes([1, 2, 0, 9, 10, 4]),
    "wrong_id": bytes([1, 2, 9, 5, 10, 2, 0, 5, 10, 4]),
    "late": bytes([1, 2, 0, 5, 200, 4]),
    "timeout": bytes([1, 3, 100, 4]),
}
SAVE_EDITS = {
    "set": b"user=ada\nviews=2",
    "remove": b"views\nuser",
    "json": b'user={"id":42,"name":"Ada"}\n1=[1,2,3]',
    "same": b"views=1",
    "none": b"",
}
for rec in range(4):
    for ename, edits in SAVE_EDITS.items():
        for sname, script in SAVE_SCRIPTS.items():
            if ename in ("set", "none") or sname in ("swapped", "conflict_then_swapped"):
                corpus["save"][f"r{rec}_{ename}_{sname}"] = bytes([rec]) + edits + b"\0" + script
    corpus["save"][f"r{rec}_update_conflict"] = bytes([rec | 8]) + b"\0" + SAVE_SCRIPTS["conflict_then_swapped"]
corpus["save"]["bad_id"] = bytes([16]) + b"user=ada\0" + SAVE_SCRIPTS["swapped"]

# `events`: subscriber messages, each [channel length][channel][payload
# length][payload]; the own channel is `own:1`.
def message(channel, payload):
    return bytes([len(channel)]) + channel + bytes([len(payload)]) + payload

corpus["events"] = {
    "del": message(b"__keyspace@0__:sess:abc", b"del"),
    "own_then_set": message(b"own:1", b"sess:abc") + message(b"__keyspace@0__:sess:abc", b"set")
    + message(b"__keyspace@0__:sess:abc", b"set"),
    "expired_and_touch": message(b"__keyspace@3__:sess:x", b"expire") + message(b"__keyspace@3__:sess:x", b"expired"),
    "other_prefix": message(b"__keyspace@0__:other:abc", b"set") + message(b"__keyspace@0__:sess:a\x01b", b"set"),
    "rename": message(b"__keyspace@0__:sess:a", b"rename_from") + message(b"__keyspace@0__:sess:b", b"rename_to"),
}

# `formats`: a selector byte (mod 4: the cookie crate's jars, tower-sessions
# records, actix-session states, Cookie lines in every format), then the
# payload: the real crates' values for key bytes 0x00..0x3f (docs in
# notes/formats.md and the core's format tests).
TOWER_SIGNED = b"+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ"
TOWER_SEALED = b"P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M="
ACTIX_SEALED = (b"lno7UzUHWDVtzcNkpv6lxcOzZoniQOaDgqqQs1TY2bju68mGuafIVscCbpUmpV%2F9uCtGZc9TAmZ%2F"
                b"mrlWw1yoBGlFmg2T5cO2KH7NluZnwFdKiIlMi9ic1j7QTd0%3D")
ACTIX_SIGNED = (b"qQknImLIPUeHFJX1PSBOlJjRODoQ7jmcd1yn9%2FfF2g0%3Dn2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z"
                b"7GBuq9yP5RNVtaujzWLRacMn5n")
# rmp_serde::to_vec of a tower-sessions Record with axum-login's entry.
TOWER_RECORD = bytes.fromhex(
    "93c4100102030405060708090a0b0c0d0e0f10"
    "82a16e05af6178756d2d6c6f67696e2e6461746182a9617574685f68617368930102"
    "03a7757365725f69640199cd07ea790c2238ce2f072f40000000")
corpus["formats"] = {
    "jar_raw_id": bytes([0]) + b"vNPPFgK-j7a-idNRnFp0KQ",
    "jar_signed": bytes([4]) + TOWER_SIGNED,
    "jar_sealed_moved": bytes([0x80]) + TOWER_SEALED,
    "jar_actix_key": bytes([8]) + b"rHrHQJDJ5W9F0l0d0GjgT1whBFGetSPXeQ4CFDgEzpBQkFk8DOup06PXuYAODMZ7",
    "tower_record_axum_login": bytes([1]) + TOWER_RECORD,
    "tower_record_offset": bytes([1]) + bytes.fromhex("93c410" + "ff" * 16 + "80" + "99cd07ea010000000000fe1e00"),
    "actix_state": bytes([2]) + b'{"user":"{\\"id\\":7,\\"name\\":\\"al\\\\\\"ice\\"}","n":"1"}',
    "actix_state_empty": bytes([2]) + b"{}",
    "actix_state_repeated_key": bytes([2]) + b'{"a":"1","a":"[1,2.5,null]"}',
    "cookies_tower_plain": bytes([3]) + b"theme=dark; id=vNPPFgK-j7a-idNRnFp0KQ",
    "cookies_tower_signed": bytes([3]) + b"id=" + TOWER_SIGNED,
    "cookies_tower_private_last_wins": bytes([3]) + b"id=garbage\nid=" + TOWER_SEALED,
    "cookies_actix_private_first_wins": bytes([3]) + b"id=" + ACTIX_SEALED + b"; id=x",
    "cookies_actix_signed_quoted": bytes([3]) + b'id="' + ACTIX_SIGNED + b'"',
    "cookies_bad_line": bytes([3]) + b"a=\xff\nid=vNPPFgK-j7a-idNRnFp0KQ",
}

for target, seeds in corpus.items():
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for name, content in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(content)
    print(f"{target}: {len(seeds)} seeds")
