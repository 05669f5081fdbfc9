//! `Cookie` header parsing with the exact rules of the npm `cookie` 0.7.2
//! package, which is what express-session 1.x uses.
//!
//! The rules, all on bytes (header values are latin1 on the wire):
//! - several `Cookie` header lines are one list, in order (Node joins them
//!   with `"; "`);
//! - split on `;`, then at the first `=`; a piece without `=` is skipped;
//! - only SP and HTAB are trimmed around names and values; names are
//!   case-sensitive;
//! - the first occurrence of a name wins, even when its value later fails to
//!   verify;
//! - one pair of surrounding `"` is stripped when the (trimmed) value starts
//!   and ends with one (a lone `"` becomes the empty value);
//! - values containing `%` are decoded with `decodeURIComponent` semantics;
//!   on any decoding error the raw value is kept.
//!
//! Values are returned as the UTF-8 bytes of the JavaScript string Node
//! would see: raw bytes `0x80..=0xFF` are latin1 characters (two UTF-8 bytes
//! each), percent-escapes are UTF-8. That is also the byte string that
//! `cookie-signature` feeds to HMAC, so verification matches Node exactly.

use std::borrow::Cow;

use smallvec::SmallVec;

/// Inline capacity for a decoded cookie value. An express-session value
/// (`s:` + 32-byte id + `.` + 43-byte signature) is 78 bytes, so the usual
/// case never touches the heap.
pub(crate) const INLINE_VALUE: usize = 80;

/// A decoded cookie value, inline up to [`INLINE_VALUE`] bytes.
pub(crate) type ValueBuf = SmallVec<[u8; INLINE_VALUE]>;

/// Bounds on the work done for one request's `Cookie` header lines ([R4]).
///
/// [R4]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r4
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum total bytes over all `Cookie` header lines.
    pub max_header_bytes: usize,
    /// Maximum number of `;`-separated pieces examined before giving up.
    pub max_pairs: usize,
}

impl Default for Limits {
    /// 16 KiB of `Cookie` lines (Node's whole-header default) and 256 pieces
    /// (browsers keep at most about 180 cookies per site).
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_pairs: 256,
        }
    }
}

/// Which bound a header exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The `Cookie` lines hold more than `max_header_bytes` bytes.
    Bytes {
        /// The configured bound.
        limit: usize,
    },
    /// More than `max_pairs` pieces were examined without finding the cookie.
    Pairs {
        /// The configured bound.
        limit: usize,
    },
}

/// Iterator over the `(name, value)` pairs of one `Cookie` header line,
/// borrowed from the line. Names and values are trimmed of SP/HTAB and
/// values are unquoted, but not percent-decoded (see [`decode`]).
///
/// Every pair is yielded, duplicates included; "first occurrence wins" is
/// the caller's rule to apply.
#[derive(Clone, Debug)]
pub struct Pairs<'a> {
    rest: Option<&'a [u8]>,
}

/// The pairs of one `Cookie` header line. See [`Pairs`].
pub fn pairs(line: &[u8]) -> Pairs<'_> {
    Pairs { rest: Some(line) }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let (piece, tail) = match memchr::memchr(b';', rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            self.rest = tail;
            if let Some(pair) = split_pair(piece) {
                return Some(pair);
            }
        }
    }
}

/// Splits one `;`-free piece at its first `=`, trimming name and value and
/// unquoting the value. `None` for a piece without `=`.
#[inline]
fn split_pair(piece: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr::memchr(b'=', piece)?;
    let name = trim(&piece[..eq]);
    let value = unquote(trim(&piece[eq + 1..]));
    Some((name, value))
}

#[inline]
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    s
}

#[inline]
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

#[inline]
fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Strips one pair of surrounding `"`. Like `cookie` 0.7.2, a value that is
/// a single `"` starts and ends with a quote and so becomes empty.
#[inline]
fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"'] => &[],
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

/// State of a search for one cookie over several header lines.
///
/// Feed the lines in order with [`Scan::line`]; the first pair whose name
/// matches wins and later lines are only counted against the byte bound.
/// The value is decoded straight into the caller's buffer, so that it is
/// never moved. No `Debug`: it holds the cookie's value.
pub(crate) struct Scan<'n, 'b> {
    finder: &'n memchr::memmem::Finder<'static>,
    limits: Limits,
    bytes: usize,
    pieces: usize,
    lines: usize,
    out: &'b mut ValueBuf,
    found: bool,
    exceeded: Option<LimitExceeded>,
}

/// The result of a finished [`Scan`]. No `Debug`: it holds the cookie's
/// value.
pub(crate) enum Lookup {
    /// No `Cookie` header line was seen.
    NoHeader,
    /// Lines were seen but none has the cookie.
    Absent,
    /// The first pair with the cookie's name; its decoded value is in the
    /// scan's buffer.
    Found,
    /// A bound was exceeded.
    TooLarge(LimitExceeded),
}

impl<'n, 'b> Scan<'n, 'b> {
    /// A search for the cookie `finder` looks for (the config keeps one
    /// built for its cookie name), decoding its value into `out`.
    pub(crate) fn new(
        finder: &'n memchr::memmem::Finder<'static>,
        limits: Limits,
        out: &'b mut ValueBuf,
    ) -> Self {
        Scan {
            finder,
            limits,
            bytes: 0,
            pieces: 0,
            lines: 0,
            out,
            found: false,
            exceeded: None,
        }
    }

    /// Takes the next `Cookie` header line.
    ///
    /// One pass: every occurrence of the name is a candidate, accepted only
    /// where it starts a pair (nothing but SP/HTAB since the line start or
    /// the last `;`) and is followed by SP/HTAB and `=`. The name is a token
    /// (no `;`, `=`, SP or HTAB), so the first accepted occurrence is exactly
    /// the first pair that `cookie` 0.7.2 would name so.
    pub(crate) fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        self.bytes = self.bytes.saturating_add(line.len());
        if self.bytes > self.limits.max_header_bytes {
            self.exceeded = Some(LimitExceeded::Bytes {
                limit: self.limits.max_header_bytes,
            });
        }
        if self.exceeded.is_some() || self.found {
            return;
        }
        let name_len = self.finder.needle().len();
        let mut from = 0;
        while let Some(at) = self.finder.find(&line[from..]).map(|i| from + i) {
            from = at + 1;
            let before = trim_end(&line[..at]);
            if !(before.is_empty() || before.ends_with(b";")) {
                continue;
            }
            let Some(rest) = trim_start(&line[at + name_len..]).strip_prefix(b"=") else {
                continue;
            };
            // The pieces examined: those before this one, and this one. The
            // count is needed only when it could pass the bound: there are
            // never more `;` than bytes before the name.
            let may_exceed = self.pieces.saturating_add(at + 1) > self.limits.max_pairs;
            if may_exceed && self.count_pieces(&line[..at]) {
                return;
            }
            let value = match memchr::memchr(b';', rest) {
                Some(i) => &rest[..i],
                None => rest,
            };
            decode_into(unquote(trim(value)), self.out);
            self.found = true;
            return;
        }
        self.count_pieces(line);
    }

    /// Adds the pieces of `s` (its `;` plus one) to the count; `true` if the
    /// pair bound is now exceeded.
    fn count_pieces(&mut self, s: &[u8]) -> bool {
        self.pieces = self
            .pieces
            .saturating_add(memchr::memchr_iter(b';', s).count() + 1);
        if self.pieces > self.limits.max_pairs {
            self.exceeded = Some(LimitExceeded::Pairs {
                limit: self.limits.max_pairs,
            });
        }
        self.exceeded.is_some()
    }

    pub(crate) fn finish(self) -> Lookup {
        if let Some(e) = self.exceeded {
            Lookup::TooLarge(e)
        } else if self.found {
            Lookup::Found
        } else if self.lines == 0 {
            Lookup::NoHeader
        } else {
            Lookup::Absent
        }
    }
}

/// Decodes a raw cookie value as `cookie` 0.7.2 does and returns the UTF-8
/// bytes of the resulting JavaScript string.
///
/// Borrowed when the value is ASCII without `%` (the common case), owned
/// otherwise. A value whose percent-decoding fails (`%` not followed by two
/// hex digits, or escapes that are not valid UTF-8) is kept raw.
pub fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.is_ascii() && memchr::memchr(b'%', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut buf = ValueBuf::new();
    decode_into(raw, &mut buf);
    Cow::Owned(buf.into_vec())
}

/// [`decode`] into `out` (cleared first).
pub(crate) fn decode_into(raw: &[u8], out: &mut ValueBuf) {
    out.clear();
    // One look at the whole value: whether it is ASCII (each run is then
    // copied as it is) and where its first `%` is.
    let ascii = is_ascii(raw);
    if let Some(first) = memchr::memchr(b'%', raw)
        && percent_decode_into(raw, first, ascii, out)
    {
        return;
    }
    out.clear();
    latin1_into(raw, ascii, out);
}

/// Whether `s` is all ASCII, looking at every byte without an early exit
/// (the loop vectorizes; values are short).
#[inline]
fn is_ascii(s: &[u8]) -> bool {
    s.iter().fold(0u8, |any, &b| any | b) < 0x80
}

/// Appends the latin1 bytes `raw` as UTF-8; `ascii` says whether they are
/// all ASCII (then they are UTF-8 as they are).
#[inline]
fn latin1_into(raw: &[u8], ascii: bool, out: &mut ValueBuf) {
    if ascii {
        out.extend_from_slice(raw);
        return;
    }
    for &b in raw {
        if b < 0x80 {
            out.push(b);
        } else {
            // U+0080..=U+00FF in UTF-8: 110000xx 10xxxxxx.
            out.push(0xC0 | (b >> 6));
            out.push(0x80 | (b & 0x3F));
        }
    }
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `decodeURIComponent` over a latin1 string, writing UTF-8. Returns false
/// where JavaScript would throw `URIError`.
///
/// Each maximal run of `%XX` escapes must be valid UTF-8 on its own: in
/// ECMAScript every byte of a multi-byte character must itself be an escape,
/// and overlong forms, surrogates and code points past U+10FFFF are errors,
/// exactly what `str::from_utf8` rejects.
///
/// `first` is the index of the first `%`; `ascii` whether all of `raw` is
/// ASCII.
fn percent_decode_into(raw: &[u8], first: usize, ascii: bool, out: &mut ValueBuf) -> bool {
    let mut i = 0;
    let mut next = Some(first);
    while i < raw.len() {
        let Some(pct) = next else {
            latin1_into(&raw[i..], ascii, out);
            return true;
        };
        latin1_into(&raw[i..pct], ascii, out);
        i = pct;
        let run_start = out.len();
        let mut high = 0u8;
        while let &[b'%', h, l, ..] = &raw[i..] {
            let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                return false;
            };
            let byte = h << 4 | l;
            high |= byte;
            out.push(byte);
            i += 3;
        }
        if raw.get(i) == Some(&b'%') {
            // A `%` without two characters after it.
            return false;
        }
        // A run of ASCII escapes is valid UTF-8; only one with a high byte
        // needs the check.
        if high >= 0x80 && std::str::from_utf8(&out[run_start..]).is_err() {
            return false;
        }
        next = memchr::memchr(b'%', &raw[i..]).map(|j| i + j);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(line: &str) -> Vec<(String, String)> {
        pairs(line.as_bytes())
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn dec(raw: &[u8]) -> Vec<u8> {
        decode(raw).into_owned()
    }

    #[test]
    fn pairs_split_trim_and_skip_pieces_without_equals() {
        assert_eq!(
            all(" a = 1 ;junk; b=2=3;\t c\t=\t\"q\" ;;=e"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2=3".into()),
                ("c".into(), "q".into()),
                ("".into(), "e".into()),
            ]
        );
    }

    #[test]
    fn only_sp_and_htab_are_trimmed() {
        assert_eq!(all("\x0ba=1\x0b"), vec![("\x0ba".into(), "1\x0b".into())]);
    }

    #[test]
    fn quotes_are_stripped_only_as_a_pair() {
        assert_eq!(all("a=\"x"), vec![("a".into(), "\"x".into())]);
        assert_eq!(all("a=x\""), vec![("a".into(), "x\"".into())]);
        assert_eq!(all("a=\"\"x\"\""), vec![("a".into(), "\"x\"".into())]);
        assert_eq!(all("a=\""), vec![("a".into(), "".into())]);
        assert_eq!(all("a=\"\""), vec![("a".into(), "".into())]);
    }

    #[test]
    fn percent_decoding_follows_decode_uri_component() {
        assert_eq!(dec(b"s%3Aabc"), b"s:abc");
        assert_eq!(dec(b"%2B%2f"), b"+/");
        assert_eq!(dec(b"caf%C3%A9"), "café".as_bytes());
        assert_eq!(dec(b"%F0%9F%98%80"), "😀".as_bytes());
        // Errors keep the raw value.
        assert_eq!(dec(b"a%ZZ"), b"a%ZZ");
        assert_eq!(dec(b"a%"), b"a%");
        assert_eq!(dec(b"a%4"), b"a%4");
        assert_eq!(dec(b"%C3"), b"%C3");
        assert_eq!(dec(b"%C3x"), b"%C3x");
        assert_eq!(dec(b"%80"), b"%80");
        assert_eq!(dec(b"%C0%AF"), b"%C0%AF"); // overlong
        assert_eq!(dec(b"%ED%A0%80"), b"%ED%A0%80"); // surrogate
        assert_eq!(dec(b"%F4%90%80%80"), b"%F4%90%80%80"); // > U+10FFFF
        // `+` is not a space in decodeURIComponent.
        assert_eq!(dec(b"a+b%20"), b"a+b ");
    }

    #[test]
    fn raw_high_bytes_are_latin1() {
        assert_eq!(dec(b"caf\xe9"), "café".as_bytes());
        // Mixed: raw latin1 plus a decoded escape.
        assert_eq!(dec(b"\xe9%C3%A9"), "éé".as_bytes());
        // A raw UTF-8 sequence is two latin1 characters, as in Node.
        assert_eq!(dec("é".as_bytes()), "Ã©".as_bytes());
        // Raw kept on error is still latin1.
        assert_eq!(dec(b"\xe9%"), "é%".as_bytes());
    }

    #[test]
    fn ascii_without_percent_is_borrowed() {
        assert!(matches!(decode(b"abc"), Cow::Borrowed(_)));
        assert!(matches!(decode(b"a%20"), Cow::Owned(_)));
    }

    /// The lookup, and the value when found.
    fn scan_value(lines: &[&[u8]], limits: Limits) -> (Lookup, Vec<u8>) {
        let finder = memchr::memmem::Finder::new(b"connect.sid").into_owned();
        let mut out = ValueBuf::new();
        let mut s = Scan::new(&finder, limits, &mut out);
        for l in lines {
            s.line(l);
        }
        let lookup = s.finish();
        (lookup, out.to_vec())
    }

    fn scan(lines: &[&[u8]], limits: Limits) -> Lookup {
        scan_value(lines, limits).0
    }

    #[test]
    fn r20_first_occurrence_wins_across_lines() {
        let got = scan_value(
            &[b"a=1; connect.sid=first", b"connect.sid=second"],
            Limits::default(),
        );
        assert!(matches!(got, (Lookup::Found, v) if v == b"first"));
        let got = scan_value(&[b"x=1", b"connect.sid=second"], Limits::default());
        assert!(matches!(got, (Lookup::Found, v) if v == b"second"));
    }

    #[test]
    fn r17_lines_are_one_list_and_absence_is_distinct_from_no_header() {
        assert!(matches!(scan(&[], Limits::default()), Lookup::NoHeader));
        assert!(matches!(scan(&[b""], Limits::default()), Lookup::Absent));
        assert!(matches!(
            scan(&[b"a=1", b"b=2"], Limits::default()),
            Lookup::Absent
        ));
    }

    /// The reference the one-pass scan must equal: split every line into
    /// pieces, count each piece against the bound, take the first pair whose
    /// trimmed name matches.
    fn reference(lines: &[Vec<u8>], limits: Limits) -> Option<Result<Vec<u8>, ()>> {
        let mut pieces = 0;
        let mut bytes = 0;
        let mut found = None;
        for line in lines {
            bytes += line.len();
            if bytes > limits.max_header_bytes {
                return Some(Err(()));
            }
            if found.is_some() {
                continue;
            }
            for piece in line.split(|&b| b == b';') {
                pieces += 1;
                if pieces > limits.max_pairs {
                    return Some(Err(()));
                }
                if let Some((n, v)) = split_pair(piece)
                    && n == b"connect.sid"
                {
                    found = Some(decode(v).into_owned());
                    break;
                }
            }
        }
        found.map(Ok)
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn one_pass_scan_equals_the_piecewise_reference(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        &b"connect.sid"[..], b"connect.sid=", b"=", b";", b"; ", b" ", b"\t",
                        b"\"", b"x", b"s%3A", b"%", b"\xe9", b".sig", b"connect.si", b"dconnect.sid",
                    ]),
                    0..12,
                ).prop_map(|parts: Vec<&[u8]>| parts.concat()),
                0..4,
            ),
            max_pairs in 1usize..6,
            max_header_bytes in 1usize..200,
        ) {
            let limits = Limits { max_header_bytes, max_pairs };
            let finder = memchr::memmem::Finder::new(b"connect.sid").into_owned();
            let mut out = ValueBuf::new();
            let mut scan = Scan::new(&finder, limits, &mut out);
            let lines: Vec<Vec<u8>> = lines;
            for l in &lines {
                scan.line(l);
            }
            let got = match scan.finish() {
                Lookup::Found => Some(Ok(out.to_vec())),
                Lookup::TooLarge(_) => Some(Err(())),
                Lookup::NoHeader | Lookup::Absent => None,
            };
            proptest::prop_assert_eq!(got, reference(&lines, limits));
        }
    }

    #[test]
    fn r04_bounds_are_enforced() {
        let limits = Limits {
            max_header_bytes: 10,
            max_pairs: 3,
        };
        assert!(matches!(
            scan(&[b"a=1", b"b=2222222"], limits),
            Lookup::TooLarge(LimitExceeded::Bytes { limit: 10 })
        ));
        assert!(matches!(
            scan(&[b"a;b;c;d"], limits),
            Lookup::TooLarge(LimitExceeded::Pairs { limit: 3 })
        ));
        assert!(matches!(
            scan(
                &[b"a;b;connect.sid=x"],
                Limits {
                    max_header_bytes: 100,
                    max_pairs: 3
                }
            ),
            Lookup::Found
        ));
    }
}
