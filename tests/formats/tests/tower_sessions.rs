//! `format::tower_sessions` against tower-sessions-core 0.14's `Id` and
//! `Record` through rmp-serde (what tower-sessions-redis-store 0.16 stores),
//! and against tower-cookies' way of reading `Cookie` lines with cookie
//! 0.18's parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::str::FromStr;

use proptest::prelude::*;
use serde_json::{Map, Value};
use session_sockets_core::Limits;
use session_sockets_core::format::cookie_crate::Keys;
use session_sockets_core::format::tower_sessions::{
    self as ts, ExpiryDate, Id, Protection, Record, Settings,
};
use time::{OffsetDateTime, UtcOffset};
use tower_sessions_core::session::{Id as TsId, Record as TsRecord};

/// A JSON value of any shape serde_json holds, a few levels deep, with
/// strings, arrays and maps long enough to take every MessagePack length
/// form.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-200i64..200).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[a-z]{250,300}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 20, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..20)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn data() -> impl Strategy<Value = HashMap<String, Value>> {
    prop::collection::hash_map(".{0,20}", json(), 0..18)
}

fn expiry() -> impl Strategy<Value = OffsetDateTime> {
    (
        -50_000_000_000i64..100_000_000_000,
        0u32..1_000_000_000,
        -93_599i32..93_599,
    )
        .prop_map(|(secs, nanos, offset)| {
            OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap()
                .to_offset(UtcOffset::from_whole_seconds(offset).unwrap())
        })
}

fn same(ours: &Record, theirs: &TsRecord) -> Result<(), TestCaseError> {
    prop_assert_eq!(ours.id.as_i128(), theirs.id.0);
    prop_assert_eq!(ours.data.len(), theirs.data.len());
    for (k, v) in &theirs.data {
        prop_assert_eq!(ours.data.get(k), Some(v));
    }
    let e = theirs.expiry_date;
    let d = ours.expiry_date;
    prop_assert_eq!(
        (d.year, d.ordinal, d.hour, d.minute, d.second, d.nanosecond),
        (
            e.year(),
            e.ordinal(),
            e.hour(),
            e.minute(),
            e.second(),
            e.nanosecond()
        )
    );
    let (h, m, s) = e.offset().as_hms();
    prop_assert_eq!(
        (d.offset_hours, d.offset_minutes, d.offset_seconds),
        (h, m, s)
    );
    prop_assert_eq!(d.unix_nanos(), e.unix_timestamp_nanos());
    prop_assert_eq!(d.unix_timestamp(), e.unix_timestamp());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn records_the_crate_writes_decode_and_encode_byte_exact(
        id in any::<i128>(), data in data(), expiry_date in expiry()
    ) {
        let theirs = TsRecord { id: TsId(id), data, expiry_date };
        let bytes = rmp_serde::to_vec(&theirs).unwrap();
        let ours = Record::decode(&bytes).unwrap();
        same(&ours, &theirs)?;
        prop_assert_eq!(ours.encode(), bytes);
    }

    #[test]
    fn records_written_here_decode_in_the_crate(
        id in any::<i128>(), data in data(), expiry_date in expiry()
    ) {
        let theirs = TsRecord { id: TsId(id), data, expiry_date };
        let ours = Record::decode(&rmp_serde::to_vec(&theirs).unwrap()).unwrap();
        let back: TsRecord = rmp_serde::from_slice(&ours.encode()).unwrap();
        prop_assert_eq!(back, theirs);
    }

    #[test]
    fn r18_mutated_records_decode_here_only_as_the_crate_decodes_them(
        id in any::<i128>(), data in data(), expiry_date in expiry(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let theirs = TsRecord { id: TsId(id), data, expiry_date };
        let mut bytes = rmp_serde::to_vec(&theirs).unwrap();
        for (at, b) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        if cut.index(3) == 0 {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let reference = rmp_serde::from_slice::<TsRecord>(&bytes);
        match Record::decode(&bytes) {
            Ok(ours) => {
                let Ok(reference) = reference else {
                    return Err(TestCaseError::fail(format!("accepted here only: {bytes:02x?}")));
                };
                same(&ours, &reference)?;
            }
            // Refused here: the crate refuses too, except deeper than 128
            // levels (not generated) or a date offset whose signs disagree
            // (normalized as `time` does, so accepted).
            Err(e) => prop_assert!(reference.is_err(), "refused here only ({e}): {bytes:02x?}"),
        }
    }

    #[test]
    fn ids_display_and_parse_as_the_crate(id in any::<i128>()) {
        let text = TsId(id).to_string();
        prop_assert_eq!(Id::from_i128(id).expose(), text.clone());
        prop_assert_eq!(Id::parse(&text), Some(Id::from_i128(id)));
    }

    #[test]
    fn r15_any_text_is_an_id_here_exactly_when_it_is_one_there(s in "[A-Za-z0-9_=+/-]{0,26}") {
        prop_assert_eq!(
            Id::parse(&s).map(|i| i.as_i128()),
            TsId::from_str(&s).ok().map(|i| i.0)
        );
    }

    #[test]
    fn r17_cookie_lines_resolve_as_tower_cookies_reads_them(
        a in any::<i128>(), b in any::<i128>(),
        lines in prop::collection::vec(prop::collection::vec(0usize..PIECES, 0..7), 0..4),
        bad_line in any::<bool>(), sep in prop_oneof![Just(";"), Just("; "), Just(" ;")],
    ) {
        let ids = [TsId(a).to_string(), TsId(b).to_string()];
        let mut raw: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| l.iter().map(|&p| piece(p, &ids)).collect::<Vec<_>>().join(sep).into_bytes())
            .collect();
        if bad_line {
            raw.push(b"id=\xff\xfe".to_vec());
        }
        let reference = tower_reference(&raw, "id").and_then(|v| TsId::from_str(&v).ok()).map(|i| i.0);
        let ours = ts::resolve(&Settings::default(), raw.iter().map(Vec::as_slice), Limits::default());
        prop_assert_eq!(ours.ok().map(|i| i.as_i128()), reference);
    }

    #[test]
    fn r36_signed_cookie_lines_resolve_as_tower_sessions_verifies_them(
        a in any::<i128>(), key in prop::array::uniform32(any::<u8>()),
        lines in prop::collection::vec(prop::collection::vec(0usize..PIECES, 0..5), 1..3),
    ) {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&key);
        let keys = Keys::from_bytes([k]).unwrap();
        let ids = [keys.sign(&TsId(a).to_string()), "+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ".to_owned()];
        let raw: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| l.iter().map(|&p| piece(p, &ids)).collect::<Vec<_>>().join("; ").into_bytes())
            .collect();
        let ck = cookie::Key::from(&k);
        let reference = tower_reference(&raw, "id")
            .and_then(|v| {
                cookie::CookieJar::new()
                    .signed(&ck)
                    .verify(cookie::Cookie::new("id", v))
            })
            .and_then(|c| TsId::from_str(c.value()).ok())
            .map(|i| i.0);
        let settings = Settings { protection: Protection::Signed(keys), ..Settings::default() };
        let ours = ts::resolve(&settings, raw.iter().map(Vec::as_slice), Limits::default());
        prop_assert_eq!(ours.ok().map(|i| i.as_i128()), reference);
    }
}

/// How many kinds of piece [`piece`] makes.
const PIECES: usize = 20;

/// A `Cookie` piece of kind `i` around the two values.
fn piece(i: usize, v: &[String; 2]) -> String {
    let encoded = |s: &str| {
        s.bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 3 == 1 {
                    format!("%{b:02X}")
                } else {
                    char::from(b).to_string()
                }
            })
            .collect::<String>()
    };
    match i {
        0 => format!("id={}", v[0]),
        1 => format!("id={}", v[1]),
        2 => format!("id={}", encoded(&v[0])),
        3 => format!(" id = {} ", v[1]),
        4 => format!("i%64={}", v[0]),
        5 => format!("id=\"{}\"", v[1]),
        6 => "id=garbage".into(),
        7 => "id=".into(),
        8 => "id".into(),
        9 => format!("={}", v[0]),
        10 => "x=1".into(),
        11 => "id=%FF".into(),
        12 => format!("id={}%", v[0]),
        13 => format!("\u{a0}id={}\u{3000}", v[1]),
        14 => "é=ü".into(),
        15 => format!("ID={}", v[0]),
        16 => format!("id={}==", v[0]),
        17 => "".into(),
        18 => format!("id={}", v[0].to_lowercase()),
        _ => format!("id=+{}", v[1]),
    }
}

/// tower-cookies 0.11's jar, built as it builds it (`Inner::jar`), with
/// cookie 0.18's parser: the value `jar.get(name)` returns.
fn tower_reference(lines: &[Vec<u8>], name: &str) -> Option<String> {
    let mut jar = cookie::CookieJar::new();
    for header in lines {
        if let Ok(header_str) = std::str::from_utf8(header) {
            for cookie_str in header_str.split(';') {
                if let Ok(cookie) = cookie::Cookie::parse_encoded(cookie_str.to_owned()) {
                    jar.add_original(cookie);
                }
            }
        }
    }
    jar.get(name).map(|c| c.value().to_owned())
}

#[test]
fn the_probes_record_bytes_are_the_crates() {
    let mut data = HashMap::new();
    data.insert(
        ts::AXUM_LOGIN_KEY.to_owned(),
        serde_json::json!({"user_id": 1, "auth_hash": [1, 2, 3]}),
    );
    let theirs = TsRecord {
        id: TsId(0x0102030405060708090a0b0c0d0e0f10),
        data,
        expiry_date: time::macros::datetime!(2026-05-01 12:34:56.789 UTC),
    };
    let bytes = rmp_serde::to_vec(&theirs).unwrap();
    let ours = Record::decode(&bytes).unwrap();
    assert_eq!(ours.encode(), bytes);
    let login = ts::axum_login(&ours.data).unwrap();
    assert_eq!(login.user_id, &Value::from(1));
    assert_eq!(login.auth_hash.as_deref(), Some(&[1u8, 2, 3][..]));
    // A record built here from scratch is the crate's too.
    let mut mine = Record::new(
        Id::from_i128(0x0102030405060708090a0b0c0d0e0f10),
        ExpiryDate::from_unix_nanos(theirs.expiry_date.unix_timestamp_nanos()).unwrap(),
    );
    mine.data = Map::from_iter(theirs.data.clone());
    assert_eq!(mine.encode(), bytes);
}
