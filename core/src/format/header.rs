//! Finding the session cookie in `Cookie` header lines the way the `cookie`
//! crate's `Cookie::parse_encoded` and the two frameworks around it do.
//!
//! What both share (tower-cookies 0.11 with cookie 0.18, actix-web 4.18 with
//! cookie 0.16): every `Cookie` line in order; each line read as UTF-8;
//! split on `;`; a piece without `=` or with an empty name skipped; name and
//! value cut at the first `=` and trimmed with `str::trim` (Unicode white
//! space); then both percent-decoded (`%XX` only, `+` stays) and required
//! to be UTF-8 again, or the piece is skipped. The decoded name is compared.
//!
//! Where they differ is a [`Rules`] value: which duplicate counts, whether
//! one pair of surrounding quotes is stripped (cookie 0.16 does, before
//! decoding), and what a line that is not UTF-8 does (tower-cookies skips
//! that line; actix-web reads no cookie at all).

use std::borrow::Cow;

use crate::codec::cookie::{LimitExceeded, Limits};

/// Which of several cookies with the session cookie's name counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Duplicates {
    /// The first (actix-session: `cookies.iter().find(..)`).
    First,
    /// The last (tower-cookies: `CookieJar::add_original` replaces).
    Last,
}

/// A framework's cookie-reading rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    pub(crate) duplicates: Duplicates,
    /// cookie 0.16's `trim_quotes`: one pair of surrounding `"` removed
    /// from the trimmed value, which is trimmed again.
    pub(crate) strip_quotes: bool,
    /// actix-web: one line that is not UTF-8 and no cookie is read.
    pub(crate) bad_line_hides_all: bool,
}

/// tower-sessions 0.14 (tower-cookies 0.11, cookie 0.18).
pub(crate) const TOWER: Rules = Rules {
    duplicates: Duplicates::Last,
    strip_quotes: false,
    bad_line_hides_all: false,
};

/// actix-session 0.11 (actix-web 4.18, cookie 0.16).
pub(crate) const ACTIX: Rules = Rules {
    duplicates: Duplicates::First,
    strip_quotes: true,
    bad_line_hides_all: true,
};

/// What a scan of the `Cookie` lines found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// No `Cookie` line at all.
    NoHeader,
    /// Lines, but no cookie of that name.
    Absent,
    /// A line was not UTF-8 and the rules read no cookie then.
    BadLine,
    /// The value of the cookie that counts, percent-decoded.
    Value(Cow<'a, str>),
}

/// Finds the value of cookie `name` in `lines` under `rules`, within
/// `limits` (every line's bytes are counted, and every piece for
/// [`Duplicates::Last`], which must see them all).
pub(crate) fn find<'a, I>(
    lines: I,
    name: &str,
    rules: Rules,
    limits: Limits,
) -> Result<Found<'a>, LimitExceeded>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut seen_line = false;
    let mut bad_line = false;
    let mut bytes = 0usize;
    let mut pairs = 0usize;
    let mut found: Option<Cow<'a, str>> = None;
    for line in lines {
        seen_line = true;
        bytes = bytes.saturating_add(line.len());
        if bytes > limits.max_header_bytes {
            return Err(LimitExceeded::Bytes {
                limit: limits.max_header_bytes,
            });
        }
        let Ok(line) = std::str::from_utf8(line) else {
            bad_line = true;
            continue;
        };
        if rules.duplicates == Duplicates::First && found.is_some() {
            // Later lines matter only for their size and UTF-8.
            continue;
        }
        for piece in line.split(';') {
            pairs += 1;
            if pairs > limits.max_pairs {
                return Err(LimitExceeded::Pairs {
                    limit: limits.max_pairs,
                });
            }
            if let Some(value) = matching_value(piece, name, rules) {
                found = Some(value);
                if rules.duplicates == Duplicates::First {
                    break;
                }
            }
        }
    }
    Ok(if bad_line && rules.bad_line_hides_all {
        Found::BadLine
    } else if let Some(value) = found {
        Found::Value(value)
    } else if seen_line {
        Found::Absent
    } else {
        Found::NoHeader
    })
}

/// The decoded value of `piece` if it parses as a cookie named `name`.
fn matching_value<'a>(piece: &'a str, name: &str, rules: Rules) -> Option<Cow<'a, str>> {
    let (raw_name, raw_value) = piece.split_once('=')?;
    let raw_name = raw_name.trim();
    if raw_name.is_empty() {
        return None;
    }
    let mut raw_value = raw_value.trim();
    if rules.strip_quotes {
        raw_value = trim_quotes(raw_value).trim();
    }
    // Both must decode for the cookie to exist at all.
    let decoded_name = percent_decode(raw_name)?;
    if decoded_name != name {
        return None;
    }
    percent_decode(raw_value)
}

/// cookie 0.16's `trim_quotes`.
fn trim_quotes(s: &str) -> &str {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if s.len() >= 2 => inner,
        _ => s,
    }
}

/// `percent_encoding::percent_decode(..).decode_utf8()`: `%` and two hex
/// digits become that byte, anything else stays; `None` if the result is
/// not UTF-8. Borrows when there is no `%`.
pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&h| hex(h)),
                bytes.get(i + 2).and_then(|&l| hex(l)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// cookie 0.16's `encoded()` percent-encoding of a name or value: the
/// WHATWG userinfo set plus `(`, `)` and `,` (so `/`, `=`, `;`, `%`, space,
/// `"` and every control or non-ASCII byte become `%XX`; `+` stays), in
/// upper-case hex.
pub(crate) fn percent_encode_cookie(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        let encode = !(0x20..0x7f).contains(&b)
            || matches!(
                b,
                b' ' | b'"'
                    | b'<'
                    | b'>'
                    | b'`'
                    | b'#'
                    | b'?'
                    | b'{'
                    | b'}'
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
                    | b'['
                    | b'\\'
                    | b']'
                    | b'^'
                    | b'|'
                    | b'%'
                    | b'('
                    | b')'
                    | b','
            );
        if encode {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_in<'a>(lines: &[&'a str], rules: Rules) -> Found<'a> {
        find(
            lines.iter().map(|l| l.as_bytes()),
            "id",
            rules,
            Limits::default(),
        )
        .unwrap()
    }

    fn value(v: &str) -> Found<'_> {
        Found::Value(Cow::Borrowed(v))
    }

    #[test]
    fn r17_lines_are_one_list_and_duplicates_follow_the_framework() {
        assert_eq!(find_in(&["id=A; id=B"], TOWER), value("B"));
        assert_eq!(find_in(&["id=A", "id=B"], TOWER), value("B"));
        assert_eq!(find_in(&["id=A; id=B"], ACTIX), value("A"));
        assert_eq!(find_in(&["id=A", "id=B"], ACTIX), value("A"));
        assert_eq!(find_in(&["x=1;id=A;y=2"], TOWER), value("A"));
        assert_eq!(find_in(&["x=1"], TOWER), Found::Absent);
        assert_eq!(find_in(&[], ACTIX), Found::NoHeader);
    }

    #[test]
    fn r18_pieces_that_do_not_parse_are_skipped_and_never_count() {
        // An undecodable later duplicate is no cookie: the earlier one stays.
        assert_eq!(find_in(&["id=A; id=%FF"], TOWER), value("A"));
        assert_eq!(find_in(&["id=%FF; id=A"], ACTIX), value("A"));
        assert_eq!(find_in(&["bad; =x; id=A"], ACTIX), value("A"));
        assert_eq!(find_in(&["  id  =  A  "], TOWER), value("A"));
        // Unicode white space is trimmed too (str::trim).
        assert_eq!(find_in(&["\u{a0}id=A\u{3000}"], TOWER), value("A"));
    }

    #[test]
    fn r19_names_and_values_are_percent_decoded_plus_stays() {
        assert_eq!(
            find_in(&["i%64=a%2Fb+c%3D"], TOWER),
            Found::Value(Cow::Owned("a/b+c=".into()))
        );
        assert_eq!(
            find_in(&["id=%zz%4"], ACTIX),
            Found::Value(Cow::Borrowed("%zz%4"))
        );
        assert_eq!(percent_decode("%%41").as_deref(), Some("%A"));
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(percent_decode("%e2%82"), None);
    }

    #[test]
    fn quotes_are_stripped_only_by_actix_rules() {
        assert_eq!(find_in(&["id=\"A\""], TOWER), value("\"A\""));
        assert_eq!(find_in(&["id=\"A\""], ACTIX), value("A"));
        assert_eq!(find_in(&["id=\" A \""], ACTIX), value("A"));
        assert_eq!(find_in(&["id=\""], ACTIX), value("\""));
        assert_eq!(find_in(&["id=\"\""], ACTIX), value(""));
        // Quotes go before decoding: encoded quotes stay.
        assert_eq!(
            find_in(&["id=%22A%22"], ACTIX),
            Found::Value(Cow::Owned("\"A\"".into()))
        );
    }

    #[test]
    fn r18_a_line_that_is_not_utf8_is_skipped_or_hides_all() {
        let lines: [&[u8]; 2] = [b"id=A", b"x=\xff"];
        let f = |rules| find(lines, "id", rules, Limits::default()).unwrap();
        assert_eq!(f(TOWER), value("A"));
        assert_eq!(f(ACTIX), Found::BadLine);
        let lines: [&[u8]; 2] = [b"id=\xff", b"id=B"];
        assert_eq!(
            find(lines, "id", TOWER, Limits::default()).unwrap(),
            value("B")
        );
    }

    #[test]
    fn r04_limits_bound_bytes_and_pairs() {
        let limits = Limits {
            max_header_bytes: 10,
            max_pairs: 2,
        };
        let long = [&b"id=0123456789"[..]];
        assert_eq!(
            find(long, "id", TOWER, limits),
            Err(LimitExceeded::Bytes { limit: 10 })
        );
        let many = [&b"a=1;b=2;id"[..]];
        assert_eq!(
            find(many, "id", TOWER, limits),
            Err(LimitExceeded::Pairs { limit: 2 })
        );
        // First-wins stops at the first match.
        let early = [&b"id=1;b=2;c"[..]];
        assert_eq!(find(early, "id", ACTIX, limits), Ok(value("1")));
    }

    #[test]
    fn encoding_is_cookie_016s_set() {
        let mut out = String::new();
        percent_encode_cookie("a+b/c=d;e f\"%é", &mut out);
        assert_eq!(out, "a+b%2Fc%3Dd%3Be%20f%22%25%C3%A9");
    }
}
