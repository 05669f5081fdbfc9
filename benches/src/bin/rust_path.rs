//! Times the Rust side of `node/compare.sh` the way
//! `node/express_path_bench.js` times express-session's: a warm-up, then
//! rounds of a fixed number of iterations, reporting the median ns/op.
//!
//! ```sh
//! cargo run --release -p session-sockets-benches --bin rust_path -- [--rounds 7] [--iters 2000000] [--warmup 200000]
//! ```
//!
//! Prints one JSON line per path:
//! - `rust_path`: `resolve_cookie` on the header: cookie parse, the `s:`
//!   check and the signature verify, the same work as express-session's
//!   `getcookie`;
//! - `rust_handshake`: the core handshake from all request headers to the
//!   `Load` request (adds the Origin check and the store key);
//! - `bare_hmac`: the floor, a pre-keyed HMAC-SHA256 verify of the id.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use session_sockets_benches::{BareVerify, HEADER, SID, config, now, request_headers};
use session_sockets_core::Machine;
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::machines::Handshake;

struct Opts {
    rounds: usize,
    iters: usize,
    warmup: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 7,
        iters: 2_000_000,
        warmup: 200_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let slot = match name.as_str() {
            "--rounds" => &mut o.rounds,
            "--iters" => &mut o.iters,
            "--warmup" => &mut o.warmup,
            _ => {
                return Err(format!(
                    "unknown argument {a:?}; use --rounds N, --iters N, --warmup N"
                ));
            }
        };
        let v = inline.or_else(|| args.next()).unwrap_or_default();
        *slot = v
            .parse()
            .map_err(|_| format!("{name} needs a whole number, got {v:?}"))?;
    }
    if o.rounds == 0 || o.iters == 0 {
        return Err("--rounds and --iters must be at least 1".into());
    }
    Ok(o)
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn time(name: &str, o: &Opts, mut op: impl FnMut() -> bool) -> Result<(), String> {
    for _ in 0..o.warmup {
        if !op() {
            return Err(format!("{name}: the header did not resolve"));
        }
    }
    let mut rounds = Vec::with_capacity(o.rounds);
    for _ in 0..o.rounds {
        let t0 = Instant::now();
        let mut ok = true;
        for _ in 0..o.iters {
            ok &= op();
        }
        let ns = t0.elapsed().as_nanos() as f64 / o.iters as f64;
        if !ok {
            return Err(format!("{name}: the header did not resolve during timing"));
        }
        rounds.push((ns * 10.0).round() / 10.0);
    }
    let list: Vec<String> = rounds.iter().map(|r| format!("{r}")).collect();
    println!(
        "{{\"name\":\"{name}\",\"ns_per_op\":{},\"rounds\":[{}]}}",
        (median(&rounds) * 10.0).round() / 10.0,
        list.join(",")
    );
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rust_path: {e}");
            return ExitCode::from(2);
        }
    };
    let config = config();
    let headers = request_headers();
    let result = time("rust_path", &o, || {
        resolve_cookie(&config, [black_box(HEADER)]).is_ok_and(|sid| sid.expose() == SID.as_bytes())
    })
    .and_then(|()| {
        time("rust_handshake", &o, || {
            let start = now();
            let mut hs = Handshake::new(config.clone(), start);
            hs.handle_headers(black_box(&headers).iter().copied(), start.instant);
            black_box(hs.poll_request()).is_some()
        })
    })
    .and_then(|()| {
        let bare = BareVerify::new();
        time("bare_hmac", &o, || bare.verify(black_box(SID.as_bytes())))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust_path: {e}");
            ExitCode::FAILURE
        }
    }
}
