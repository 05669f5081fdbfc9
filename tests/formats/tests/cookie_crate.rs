//! `format::cookie_crate` against the `cookie` crate's own jars: cookie 0.18
//! (tower-sessions) and cookie 0.16 (actix-session), with random keys and
//! values, tampering, moved names and foreign keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use session_sockets_core::format::cookie_crate::{Key, Keys, Rejected};

fn ours(key: &[u8; 64]) -> Keys {
    Keys::from_bytes([key]).unwrap()
}

/// The value cookie 0.18's signed jar writes for `value`.
fn signed18(key: &[u8; 64], name: &str, value: &str) -> String {
    let key = cookie::Key::from(key);
    let mut jar = cookie::CookieJar::new();
    jar.signed_mut(&key)
        .add(cookie::Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).unwrap().value().to_owned()
}

/// What cookie 0.18's signed jar verifies `signed` to.
fn verify18(key: &[u8; 64], name: &str, signed: &str) -> Option<String> {
    let key = cookie::Key::from(key);
    cookie::CookieJar::new()
        .signed(&key)
        .verify(cookie::Cookie::new(name.to_owned(), signed.to_owned()))
        .map(|c| c.value().to_owned())
}

fn sealed18(key: &[u8; 64], name: &str, value: &str) -> String {
    let key = cookie::Key::from(key);
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&key)
        .add(cookie::Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).unwrap().value().to_owned()
}

fn open18(key: &[u8; 64], name: &str, sealed: &str) -> Option<String> {
    let key = cookie::Key::from(key);
    cookie::CookieJar::new()
        .private(&key)
        .decrypt(cookie::Cookie::new(name.to_owned(), sealed.to_owned()))
        .map(|c| c.value().to_owned())
}

fn signed16(key: &[u8; 64], name: &str, value: &str) -> String {
    let key = cookie016::Key::from(key);
    let mut jar = cookie016::CookieJar::new();
    jar.signed_mut(&key)
        .add(cookie016::Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).unwrap().value().to_owned()
}

fn verify16(key: &[u8; 64], name: &str, signed: &str) -> Option<String> {
    let key = cookie016::Key::from(key);
    cookie016::CookieJar::new()
        .signed(&key)
        .verify(cookie016::Cookie::new(name.to_owned(), signed.to_owned()))
        .map(|c| c.value().to_owned())
}

fn sealed16(key: &[u8; 64], name: &str, value: &str) -> String {
    let key = cookie016::Key::from(key);
    let mut jar = cookie016::CookieJar::new();
    jar.private_mut(&key)
        .add(cookie016::Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).unwrap().value().to_owned()
}

fn open16(key: &[u8; 64], name: &str, sealed: &str) -> Option<String> {
    let key = cookie016::Key::from(key);
    cookie016::CookieJar::new()
        .private(&key)
        .decrypt(cookie016::Cookie::new(name.to_owned(), sealed.to_owned()))
        .map(|c| c.value().to_owned())
}

fn key64() -> impl Strategy<Value = [u8; 64]> {
    prop::array::uniform32(any::<u8>()).prop_flat_map(|a| {
        prop::array::uniform32(any::<u8>()).prop_map(move |b| {
            let mut k = [0u8; 64];
            k[..32].copy_from_slice(&a);
            k[32..].copy_from_slice(&b);
            k
        })
    })
}

/// Values as cookies hold them: ids, keys, and anything else printable or
/// not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{22}",
        "[A-Za-z0-9]{64}",
        ".{0,80}",
        "[ -~]{0,50}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just("id".to_owned()), "[a-z]{1,8}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn r36_signing_is_the_crates_byte_for_byte_both_versions(
        key in key64(), name in name(), v in value()
    ) {
        let theirs = signed18(&key, &name, &v);
        prop_assert_eq!(&ours(&key).sign(&v), &theirs);
        prop_assert_eq!(&signed16(&key, &name, &v), &theirs);
        prop_assert_eq!(ours(&key).verify(&theirs), Ok(v.as_str()));
    }

    #[test]
    fn r22_signed_values_move_between_names_in_the_crate_and_here(
        key in key64(), a in name(), b in name(), v in value()
    ) {
        let signed = signed18(&key, &a, &v);
        // The crate verifies it under any name; `verify` takes none.
        prop_assert_eq!(verify18(&key, &b, &signed), Some(v.clone()));
        prop_assert_eq!(verify16(&key, &b, &signed), Some(v.clone()));
        prop_assert_eq!(ours(&key).verify(&signed), Ok(v.as_str()));
    }

    #[test]
    fn r36_sealing_opens_across_both_versions_and_here(
        key in key64(), name in name(), v in value(), nonce in prop::array::uniform12(any::<u8>())
    ) {
        let k = ours(&key);
        prop_assert_eq!(k.open(&name, &sealed18(&key, &name, &v)), Ok(v.clone()));
        prop_assert_eq!(k.open(&name, &sealed16(&key, &name, &v)), Ok(v.clone()));
        let mine = k.seal(&name, &v, nonce).unwrap();
        prop_assert_eq!(open18(&key, &name, &mine), Some(v.clone()));
        prop_assert_eq!(open16(&key, &name, &mine), Some(v.clone()));
    }

    #[test]
    fn r36_a_sealed_value_moved_to_another_name_opens_nowhere(
        key in key64(), a in name(), suffix in "[a-z0-9]{1,3}", v in value()
    ) {
        let b = format!("{a}{suffix}");
        let sealed = sealed18(&key, &a, &v);
        prop_assert_eq!(open18(&key, &b, &sealed), None);
        prop_assert_eq!(ours(&key).open(&b, &sealed), Err(Rejected::BadSeal));
    }

    #[test]
    fn r36_foreign_keys_are_refused_by_both(
        key in key64(), other in key64(), v in value()
    ) {
        prop_assume!(key != other);
        let signed = signed18(&key, "id", &v);
        let sealed = sealed18(&key, "id", &v);
        prop_assert_eq!(verify18(&other, "id", &signed), None);
        prop_assert!(ours(&other).verify(&signed).is_err());
        prop_assert_eq!(open18(&other, "id", &sealed), None);
        prop_assert_eq!(ours(&other).open("id", &sealed), Err(Rejected::BadSeal));
        // Rotation: the foreign key first, the right one second, still opens.
        let both = Keys::from_bytes([other, key]).unwrap();
        prop_assert_eq!(both.verify(&signed), Ok(v.as_str()));
        prop_assert_eq!(both.open("id", &sealed), Ok(v.clone()));
    }

    #[test]
    fn r01_tampered_values_are_judged_as_the_crate_judges_them(
        key in key64(), v in value(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
        cut in any::<prop::sample::Index>(), private in any::<bool>()
    ) {
        let good = if private { sealed18(&key, "id", &v) } else { signed18(&key, "id", &v) };
        let mut chars: Vec<char> = good.chars().collect();
        for (at, c) in &edits {
            let i = at.index(chars.len().max(1));
            if i < chars.len() { chars[i] = *c; } else { chars.push(*c); }
        }
        let mut tampered: String = chars.into_iter().collect();
        if cut.index(4) == 0 {
            let mut end = cut.index(tampered.len() + 1);
            while !tampered.is_char_boundary(end) { end -= 1; }
            tampered.truncate(end);
        }
        if private {
            prop_assert_eq!(ours(&key).open("id", &tampered).ok(), open18(&key, "id", &tampered));
            prop_assert_eq!(ours(&key).open("id", &tampered).ok(), open16(&key, "id", &tampered));
        } else {
            let theirs = verify18(&key, "id", &tampered);
            prop_assert_eq!(ours(&key).verify(&tampered).ok().map(str::to_owned), theirs);
            prop_assert_eq!(
                ours(&key).verify(&tampered).ok().map(str::to_owned),
                verify16(&key, "id", &tampered)
            );
        }
    }

    #[test]
    fn r18_any_string_is_judged_as_the_crate_judges_it(key in key64(), s in ".{0,140}") {
        prop_assert_eq!(ours(&key).verify(&s).ok().map(str::to_owned), verify18(&key, "id", &s));
        prop_assert_eq!(ours(&key).open("id", &s).ok(), open18(&key, "id", &s));
    }

    #[test]
    fn keys_from_base64_are_the_same_keys(key in key64(), v in value()) {
        let from_b64 = Keys::from_base64([STANDARD.encode(key)]).unwrap();
        prop_assert_eq!(from_b64.sign(&v), signed18(&key, "id", &v));
    }
}

#[test]
fn derive_from_matches_cookie_key_derive_from() {
    for master in [vec![0u8; 32], (0u8..64).collect(), vec![0xab; 100]] {
        let derived = cookie::Key::derive_from(&master);
        let mine = Keys::new([Key::derive_from(&master).unwrap()]).unwrap();
        let theirs: [u8; 64] = derived.master().try_into().unwrap();
        assert_eq!(mine.sign("v"), ours(&theirs).sign("v"));
        assert_eq!(
            mine.open("id", &sealed18(&theirs, "id", "v")).as_deref(),
            Ok("v")
        );
    }
}
