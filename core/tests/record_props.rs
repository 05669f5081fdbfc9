//! Properties of records and saves over generated data: a record survives
//! encode/decode with its data and unknown fields, byte for byte; and a
//! conflict re-base keeps exactly this side's changed keys on top of the
//! other writer's record (R25).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};
use session_sockets_core::codec::record::{self, SessionCookie};
use support::loaded_as;

/// Object keys: arbitrary text, JavaScript array indexes (which
/// `JSON.stringify` moves first) and plain names.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (0u32..1000).prop_map(|n| n.to_string()),
        "[a-z]{1,6}",
    ]
}

/// JSON values as JavaScript has them: integers within 2^53, floats with a
/// fraction (JavaScript has no integral floats distinct from integers).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite with a fraction", |f| f.is_finite()
                && f.fract() != 0.0)
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(key(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Session data: any keys but `cookie`.
fn data() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(
        key().prop_filter("not cookie", |k| k != "cookie"),
        json(),
        0..8,
    )
    .prop_map(|m| m.into_iter().collect())
}

/// A cookie as express-session makes one, plus known and unknown fields.
fn cookie() -> impl Strategy<Value = SessionCookie> {
    (
        proptest::option::of(0u64..10_000_000_000),
        0i64..4_000_000_000_000,
        btree_map(
            prop_oneof![
                key().prop_filter("not expires", |k| k != "expires"),
                // The fields express-session knows, with any value.
                proptest::sample::select(
                    &[
                        "originalMaxAge",
                        "partitioned",
                        "priority",
                        "secure",
                        "httpOnly",
                        "domain",
                        "path",
                        "sameSite",
                    ][..]
                )
                .prop_map(str::to_owned),
            ],
            prop_oneof![
                json(),
                // What a cookie's known fields usually hold.
                proptest::sample::select(&["/", "lax", "Strict", "high", "none"][..])
                    .prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
            ],
            0..4,
        ),
    )
        .prop_map(|(max_age, now, extra)| {
            let mut c = SessionCookie::new(max_age, now);
            for (k, v) in extra {
                c.set_field(&k, v);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_encode_keeps_data_and_unknown_fields(cookie in cookie(), data in data()) {
        let bytes = record::encode(&cookie, &data);
        let rec = record::decode(&bytes).unwrap();
        // Same keys and values (JavaScript may order integer-like keys first).
        prop_assert_eq!(&rec.data, &data);
        let fields = |c: &SessionCookie| -> Map<String, Value> {
            c.fields().map(|(k, v)| (k.to_owned(), v)).collect()
        };
        prop_assert_eq!(fields(&rec.cookie), fields(&cookie));
        prop_assert_eq!(rec.cookie.expires_ms(), cookie.expires_ms());
        // And a second round trip is byte-identical.
        prop_assert_eq!(record::encode(&rec.cookie, &rec.data), bytes);
    }

    #[test]
    fn r25_rebase_keeps_mine_on_top_of_theirs(
        base in data(),
        theirs in data(),
        sets in btree_map("[a-f]", json(), 0..4),
        removes in vec("[a-f]", 0..3),
    ) {
        let cookie = SessionCookie::new(None, 0);
        let loaded = record::encode(&cookie, &base);
        let mut s = loaded_as("sid", &loaded);
        for (k, v) in &sets {
            s.insert_value(k, v.clone());
        }
        for k in &removes {
            s.remove(k);
        }
        let mine: Vec<(String, Option<Value>)> =
            s.changed_keys().map(|(k, v)| (k.to_owned(), v.cloned())).collect();
        let current = record::encode(&cookie, &theirs);
        s.refresh(loaded_as("sid", &current));
        // Expected: theirs, with each of my changed keys set or removed.
        let mut want = theirs.clone();
        for (k, v) in &mine {
            match v {
                Some(v) => { want.insert(k.clone(), v.clone()); }
                None => { want.shift_remove(k); }
            }
        }
        prop_assert_eq!(s.data(), &want);
    }
}
