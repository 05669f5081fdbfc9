//! `events`: Redis keyspace notifications and other subscriber messages,
//! in any order, through `KeyspaceFilter` and `session_event`.
//!
//! Input: messages, each `[channel length][channel][payload length]
//! [payload]` (lengths one byte each); the process's own channel is
//! `own:1`.
//!
//! Properties (besides no panic):
//! - every reported key is the channel's part after `__keyspace@<db>__:`
//!   of a keyspace message, never of another channel;
//! - a `set` right after the announcement of the same key on the own
//!   channel is never reported (the process's own write), and an
//!   announcement hides nothing but that one message;
//! - `expire` and `persist` (a touch) are never reported;
//! - a session event names the session whose key it is: the configured
//!   prefix then a usable id (UTF-8, no control character, at most
//!   `max_sid_len` bytes, R15).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_sockets_core::event::{KeyspaceFilter, keyspace_key, session_event};
use session_sockets_fuzz::machine_config;

const OWN: &[u8] = b"own:1";

fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&n, rest) = data.split_first()?;
    let n = usize::from(n).min(rest.len());
    let (field, rest) = rest.split_at(n);
    *data = rest;
    Some(field)
}

fuzz_target!(|data: &[u8]| {
    let config = machine_config();
    let mut filter = KeyspaceFilter::new(OWN);
    let mut rest = data;
    let mut announced: Option<Vec<u8>> = None;
    while let (Some(channel), Some(payload)) = (take(&mut rest), take(&mut rest)) {
        let event = filter.handle(channel, payload);
        let was_announced = announced.take();
        if channel == OWN {
            assert!(event.is_none(), "an announcement was reported");
            announced = Some(payload.to_vec());
            continue;
        }
        let Some(event) = event else { continue };
        let key = keyspace_key(channel).expect("a key event from a non-keyspace channel");
        assert_eq!(event.key, key, "the key is not the channel's");
        assert!(
            !(payload == b"set" && was_announced.as_deref() == Some(key)),
            "this process's own write was reported"
        );
        assert!(
            payload != b"expire" && payload != b"persist",
            "a touch was reported"
        );
        if let Some(ev) = session_event(&config, &event) {
            let sid = ev.id.expose().as_bytes();
            assert_eq!(event.key, [config.key_prefix().as_bytes(), sid].concat());
            assert!(!sid.is_empty() && config.usable_sid(sid));
        }
    }
});
