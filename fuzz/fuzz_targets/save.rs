//! `save`: the save machine under arbitrary sequences of replies (right,
//! wrong and repeated ids; `Swapped`, `Conflict` with any record, `Gone`,
//! `Failed`, replies of the wrong kind) and times.
//!
//! Input: one selector byte (bits 0-2: the loaded record from
//! `session_sockets_fuzz::RECORDS`; bit 3: save with an update closure that
//! increments `n`; bit 4: an id that is not a usable store key), then edits
//! `key=json-or-text` (set) or `key` (remove) separated by `\n`, then a
//! `\0`, then the `session_sockets_fuzz::drive` script.
//!
//! Properties (besides `drive`'s: no panic, unique request ids, the outcome
//! exactly once, nothing after it, an outcome within a bounded number of
//! rounds):
//! - R24: a save never creates: it emits only `CompareAndSet` (update-only)
//!   and, for an expired record, `Destroy`, all on `sess:` + the id (and
//!   `Random`, for its retry backoff);
//! - R25: an unchanged session finishes `Ok` with no request at all;
//! - bounded retries: at most `max_save_attempts` compare-and-sets;
//! - every compare-and-set expects bytes the store reported (the loaded
//!   record or a `Conflict` reply) and writes a record that decodes;
//! - no lost writes: in every compare-and-set, the keys this save changed
//!   hold this save's values and every other key holds the value of the
//!   record it expects (another writer's keys survive); with an update
//!   closure, `n` is the expected record's `n` plus one;
//! - fail closed: `Ok` after a request only follows a `Swapped` reply to
//!   a compare-and-set, or a `Conflict` whose record already holds every
//!   change of this save, fed to a machine that had not finished. A changed
//!   key that an earlier conflicting record happened to hold with this
//!   save's value is still re-applied after a later conflict.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use session_sockets_core::codec::record::decode;
use session_sockets_core::machines::Save;
use session_sockets_core::{Reply, Request, Session, SessionId};
use session_sockets_fuzz::{RECORDS, Script, drive, js_opt_eq, machine_config, start_time};

const SID: &str = "Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v";

fn n_of(data: &Map<String, Value>) -> i64 {
    data.get("n").and_then(Value::as_i64).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (edits, ops) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let loaded = RECORDS[usize::from(sel & 7) % RECORDS.len()];
    let Ok(record) = decode(loaded) else {
        return;
    };
    let with_update = sel & 8 != 0;
    let sid = if sel & 16 != 0 { "bad\u{1}id" } else { SID };
    let mut session = Session::from_record(SessionId::new(sid), record, Arc::from(loaded));
    if !edits.is_empty() {
        for line in edits.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            // With an update closure, `n` is the closure's: the property
            // below counts its increments from the record it runs on.
            if with_update && line.split_once('=').map_or(&*line, |(k, _)| k) == "n" {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => {
                    let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
                    session.insert_value(k, v);
                }
                None => {
                    session.remove(&line);
                }
            }
        }
    }
    let unchanged = !session.is_changed() && !with_update;
    // This save's own changes, as the session holds them before the save.
    let mine: Vec<(String, Option<Value>)> = session
        .changed_keys()
        .map(|(k, v)| (k.to_owned(), v.cloned()))
        .collect();

    let config = machine_config();
    let start = start_time();
    let mut save = if with_update {
        let update = Box::new(|s: &mut Session| {
            let n = n_of(s.data()) + 1;
            s.insert_value("n", Value::from(n));
        });
        Save::update(config.clone(), session, update, start)
    } else {
        Save::new(config.clone(), session, start)
    };
    let mut script = Script::new(ops);
    let report = drive(&mut save, &mut script, |_| {});

    let key = format!("sess:{sid}");
    let mut reported: Vec<&[u8]> = vec![loaded];
    for (_, reply, _, _) in &report.replies {
        if let Reply::Conflict(b) = reply {
            reported.push(b);
        }
    }
    let mut cas = 0;
    for req in &report.requests {
        match req {
            Request::CompareAndSet {
                key: k,
                expected,
                new,
                ttl_secs,
                ..
            } => {
                cas += 1;
                assert_eq!(k.as_bytes(), key.as_bytes());
                assert!(*ttl_secs > 0);
                assert!(
                    reported.iter().any(|r| *r == &expected[..]),
                    "expected bytes the store never reported"
                );
                let old = decode(expected)
                    .unwrap_or_else(|e| panic!("expected bytes do not decode: {e}"));
                let new = decode(new)
                    .unwrap_or_else(|e| panic!("a save wrote a record that does not decode: {e}"));
                if with_update {
                    assert_eq!(
                        n_of(&new.data),
                        n_of(&old.data) + 1,
                        "the update was not re-run"
                    );
                } else {
                    for (k, v) in &mine {
                        assert!(
                            js_opt_eq(new.data.get(k), v.as_ref()),
                            "this save's change to {k:?} was lost"
                        );
                    }
                    for (k, v) in &old.data {
                        if !mine.iter().any(|(m, _)| m == k) {
                            assert!(
                                js_opt_eq(new.data.get(k), Some(v)),
                                "another writer's {k:?} was lost"
                            );
                        }
                    }
                    for k in new.data.keys() {
                        assert!(
                            old.data.contains_key(k) || mine.iter().any(|(m, _)| m == k),
                            "a save wrote a key nobody set: {k:?}"
                        );
                    }
                }
            }
            Request::Destroy { key: k, .. } => assert_eq!(k.as_bytes(), key.as_bytes()),
            // Random bytes for the retry backoff: no store write.
            Request::Random { .. } => {}
            other => panic!("a save emitted {other:?} (R24: update-only)"),
        }
    }
    assert!(
        cas <= config.max_save_attempts() as usize,
        "{cas} compare-and-sets"
    );
    match &report.outcome {
        Some(Ok(_)) if report.requests.is_empty() => {
            assert!(unchanged, "a changed session finished Ok without a request");
        }
        Some(Ok(_)) => {
            // Stored: a `Swapped`, or a `Conflict` whose record already
            // holds every change of this save.
            let granted = report.replies.iter().any(|(id, reply, _, finished)| {
                let to_cas = report
                    .requests
                    .iter()
                    .any(|r| r.id() == *id && matches!(r, Request::CompareAndSet { .. }));
                let holds_mine = |b: &[u8]| {
                    !with_update
                        && decode(b).is_ok_and(|r| {
                            mine.iter()
                                .all(|(k, v)| js_opt_eq(r.data.get(k), v.as_ref()))
                        })
                };
                !finished
                    && to_cas
                    && match reply {
                        Reply::Swapped => true,
                        Reply::Conflict(b) => holds_mine(b),
                        _ => false,
                    }
            });
            assert!(granted, "Ok without a Swapped reply");
        }
        Some(Err(_)) => {}
        None => panic!("drive returned without an outcome"),
    }
    if unchanged && sid == SID {
        assert!(
            report.requests.is_empty(),
            "an unchanged session was written"
        );
        assert!(matches!(report.outcome, Some(Ok(_))));
    }
});
