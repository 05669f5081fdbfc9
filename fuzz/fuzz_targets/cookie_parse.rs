//! `cookie_parse`: arbitrary bytes as one or more `Cookie` header lines.
//!
//! Input: one selector byte (see `session_sockets_fuzz::cookie_config`:
//! limits, cookie name, secrets, unsigned ids), then the header lines
//! separated by `\n` (the Node reference's format; `\r` is data).
//!
//! Properties:
//! - resolving never panics, whatever the bytes (R2, R18);
//! - bounded work (R4): when the lines hold more than `max_header_bytes`
//!   bytes the answer is `HeaderTooLarge(Bytes)`; a `HeaderTooLarge(Pairs)`
//!   answer means more than `max_pairs` pieces really precede the cookie;
//!   the time per input is bounded by libFuzzer's `-timeout`;
//! - several lines are one list (R17): resolving lines `H1, H2` separately
//!   equals resolving the one line `H1 + "; " + H2` (what Node does with
//!   repeated headers), for every adjacent pair and for all lines joined.
//!   The only difference allowed is the byte bound: joining adds two bytes
//!   per join, so when the bound falls exactly between the two sizes the
//!   joined form must be `HeaderTooLarge(Bytes)`;
//! - a resolved id is a substring of the decoded value: non-empty, and the
//!   value was signed unless unsigned ids are accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::cookie::LimitExceeded;
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::{Config, HandshakeError};
use session_sockets_fuzz::{cookie_config, split_lines};

/// A comparable verdict: the id bytes, or the error.
fn verdict(config: &Config, lines: &[&[u8]]) -> Result<Vec<u8>, HandshakeError> {
    resolve_cookie(config, lines.iter().copied()).map(|sid| sid.expose().to_vec())
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + 2 + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b"; ");
    out.extend_from_slice(b);
    out
}

/// Checks that `joined` (the same lines with `joins` lines merged by `"; "`)
/// resolves as `separate` did.
fn same(
    config: &Config,
    total: usize,
    joins: usize,
    separate: &Result<Vec<u8>, HandshakeError>,
    joined: &[&[u8]],
) {
    let got = verdict(config, joined);
    let limit = config.limits().max_header_bytes;
    if total <= limit && total + 2 * joins > limit {
        assert_eq!(
            got,
            Err(HandshakeError::HeaderTooLarge(LimitExceeded::Bytes {
                limit
            })),
            "joined lines cross the byte bound"
        );
    } else {
        assert_eq!(
            &got, separate,
            "lines {joined:?} resolve differently when joined"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let lines = split_lines(rest);
    let config = cookie_config(sel, lines.first().copied());
    let separate = verdict(&config, &lines);

    // Bounded work.
    let limits = config.limits();
    let total: usize = lines.iter().map(|l| l.len()).sum();
    if total > limits.max_header_bytes {
        assert_eq!(
            separate,
            Err(HandshakeError::HeaderTooLarge(LimitExceeded::Bytes {
                limit: limits.max_header_bytes
            }))
        );
    }
    if let Err(HandshakeError::HeaderTooLarge(LimitExceeded::Pairs { limit })) = &separate {
        let pieces: usize = lines
            .iter()
            .map(|l| l.iter().filter(|&&b| b == b';').count() + 1)
            .sum();
        assert!(pieces > *limit, "Pairs bound hit with only {pieces} pieces");
    }
    if let Ok(sid) = &separate {
        assert!(!sid.is_empty());
    }

    // R17: adjacent lines joined (at most 8 joins, to bound the work).
    for i in 0..lines.len().saturating_sub(1).min(8) {
        let merged = join(lines[i], lines[i + 1]);
        let mut joined: Vec<&[u8]> = lines[..i].to_vec();
        joined.push(&merged);
        joined.extend_from_slice(&lines[i + 2..]);
        same(&config, total, 1, &separate, &joined);
    }
    // All lines joined into one.
    if lines.len() > 2 {
        let mut all = lines[0].to_vec();
        for l in &lines[1..] {
            all = join(&all, l);
        }
        same(&config, total, lines.len() - 1, &separate, &[&all]);
    }
});
