//! `differential_cookie`: the core's `Cookie` header pairs (npm `cookie`
//! 0.7.2 rules, as express-session reads them) against the `cookie` crate's
//! encoded split parse, `Cookie::split_parse_encoded`.
//!
//! Input: one `Cookie` header line.
//!
//! Both split on every `;` and then at the first `=`, so the two are
//! compared piece by piece, after checking that the crate's parse of the
//! whole line is its parse of the pieces in order. Everything else must
//! agree, except these known divergences, each skipped or mapped exactly:
//!
//! - D1 bytes: Node reads header bytes as latin1, the crate needs UTF-8
//!   `&str`. Only ASCII inputs are compared.
//! - D2 whitespace: Node trims only SP and HTAB; the crate trims all
//!   whitespace (also CR, LF, VT, FF). Pieces containing CR, LF, VT or FF
//!   are not compared.
//! - D3 empty names: Node keeps `=v` as the pair (`""`, `v`); the crate
//!   answers `EmptyName`. Mapped: an empty Node name must be `EmptyName`.
//! - D4 pieces without `=`: Node skips them; the crate answers
//!   `MissingPair`, or nothing for a whitespace-only piece. Mapped exactly.
//! - D5 names: the crate percent-decodes names, Node never does. Names with
//!   `%` are compared after percent-decoding Node's name; if that is not
//!   UTF-8 the crate must answer `Utf8Error`.
//! - D6 quotes: Node strips one pair of surrounding `"` from the raw value
//!   (a lone `"` becomes empty) before decoding; the crate keeps them.
//!   Mapped: the crate's raw value (`split_parse`) unquoted as Node does
//!   must equal Node's raw value, and the decoded values are compared with
//!   the crate's quotes removed.
//! - D7 decoding errors: Node keeps the raw value when
//!   `decodeURIComponent` throws (`%ZZ`, `%C3` alone, overlong forms); the
//!   crate decodes leniently or answers `Utf8Error`. Such values are not
//!   compared; every value Node decodes must decode identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::cookie::{decode, pairs};

use cookie::{Cookie, ParseError};

fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"'] => &[],
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

/// `decodeURIComponent` failed: the value has `%` and came back unchanged
/// (a successful decode of a `%XX` always shortens it).
fn node_decode_failed(raw: &[u8], decoded: &[u8]) -> bool {
    raw.contains(&b'%') && raw == decoded
}

fn compare_piece(piece: &str) {
    let node = pairs(piece.as_bytes()).next();
    let crate_raw: Vec<_> = Cookie::split_parse(piece).collect();
    let crate_dec: Vec<_> = Cookie::split_parse_encoded(piece).collect();
    assert!(
        crate_raw.len() <= 1 && crate_dec.len() <= 1,
        "one piece, one cookie"
    );

    let Some((name, raw_value)) = node else {
        // D4: no `=`.
        assert!(!piece.contains('='));
        match crate_dec.first() {
            None => assert!(piece.chars().all(char::is_whitespace)),
            Some(r) => assert_eq!(
                r.as_ref().err(),
                Some(&ParseError::MissingPair),
                "{piece:?}"
            ),
        }
        return;
    };
    if name.is_empty() {
        // D3.
        assert_eq!(
            crate_dec.first().and_then(|r| r.as_ref().err()),
            Some(&ParseError::EmptyName)
        );
        return;
    }
    let name_decoded = if name.contains(&b'%') {
        // D5.
        match percent_decode_utf8(name) {
            Some(n) => n,
            None => {
                assert!(matches!(
                    crate_dec.first(),
                    Some(Err(ParseError::Utf8Error(_)))
                ));
                return;
            }
        }
    } else {
        name.to_vec()
    };
    let node_value = decode(raw_value);
    let Some(Ok(raw)) = crate_raw.first() else {
        panic!("crate refused {piece:?} that Node reads as a pair");
    };
    assert_eq!(raw.name().as_bytes(), name, "raw names of {piece:?}");
    // D6: quotes.
    let quoted =
        raw.value().len() >= 2 && raw.value().starts_with('"') && raw.value().ends_with('"');
    assert_eq!(
        unquote(raw.value().as_bytes()),
        raw_value,
        "raw values of {piece:?}"
    );

    if node_decode_failed(raw_value, &node_value) {
        // D7: Node keeps the raw value; the crate may do anything sane.
        return;
    }
    let Some(Ok(dec)) = crate_dec.first() else {
        panic!("crate failed to decode {piece:?}, which Node decodes");
    };
    assert_eq!(
        dec.name().as_bytes(),
        &name_decoded[..],
        "decoded names of {piece:?}"
    );
    let v = dec.value().as_bytes();
    let v = if quoted {
        &v[1..v.len() - 1]
    } else if raw.value() == "\"" {
        &[][..]
    } else {
        v
    };
    assert_eq!(v, &node_value[..], "decoded values of {piece:?}");
}

/// Lenient percent-decoding (as the `percent-encoding` crate does) then
/// UTF-8, `None` if the result is not UTF-8.
fn percent_decode_utf8(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&b| hex(b)),
                s.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    String::from_utf8(out).ok().map(String::into_bytes)
}

fuzz_target!(|data: &[u8]| {
    // D1.
    if !data.is_ascii() {
        return;
    }
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // The whole line parses as its pieces in order.
    let whole: Vec<_> = Cookie::split_parse_encoded(line)
        .map(|r| r.map(|c| (c.name().to_owned(), c.value().to_owned())))
        .collect();
    let by_piece: Vec<_> = line
        .split(';')
        .flat_map(|p| {
            Cookie::split_parse_encoded(p)
                .map(|r| r.map(|c| (c.name().to_owned(), c.value().to_owned())))
        })
        .collect();
    assert_eq!(whole, by_piece);

    for piece in line.split(';') {
        // D2.
        if piece
            .bytes()
            .any(|b| matches!(b, b'\r' | b'\n' | 0x0b | 0x0c))
        {
            continue;
        }
        compare_piece(piece);
    }
});
