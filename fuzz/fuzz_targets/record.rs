//! `record`: arbitrary bytes as a stored express-session record.
//!
//! Input: the record bytes, as a store would return them.
//!
//! Properties:
//! - decoding never panics, whatever the bytes;
//! - whatever decodes re-encodes to bytes that decode again, to the same
//!   record: `decode(encode(x)) == x`, where numbers compare as JavaScript
//!   numbers (`1.0` and `1` are one number; `-0` prints as `0`, as
//!   `JSON.stringify` does) and object keys compare as sets (JavaScript
//!   moves integer-like keys first);
//! - encoding is a fixpoint after one pass: `encode(decode(encode(x)))`
//!   equals `encode(x)` byte for byte;
//! - a decoded session re-encodes (`Session::encode`) to the same bytes as
//!   `record::encode`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::record::{Record, decode, encode};
use session_sockets_core::{Session, SessionId};
use session_sockets_fuzz::js_map_eq as map_eq;

fn record_eq(a: &Record, b: &Record) -> bool {
    let fields = |r: &Record| -> serde_json::Map<String, serde_json::Value> {
        r.cookie.fields().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    a.cookie.expires_ms() == b.cookie.expires_ms()
        && map_eq(&fields(a), &fields(b))
        && map_eq(&a.data, &b.data)
}

fuzz_target!(|data: &[u8]| {
    let Ok(x) = decode(data) else {
        return;
    };
    let once = encode(&x.cookie, &x.data);
    let y = match decode(&once) {
        Ok(y) => y,
        Err(e) => panic!("encode output does not decode: {e}"),
    };
    assert!(record_eq(&x, &y), "decode(encode(x)) != x");
    let twice = encode(&y.cookie, &y.data);
    assert_eq!(once, twice, "encoding is not a fixpoint");

    let session = Session::from_record(SessionId::new("fuzz"), x, Arc::from(data));
    assert_eq!(
        session.encode(),
        once,
        "Session::encode differs from record::encode"
    );
});
