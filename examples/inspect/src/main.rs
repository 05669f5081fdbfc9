//! `inspect`: says whether, and why, `Cookie` header lines resolve to a
//! session id exactly as express-session would.
//!
//! ```text
//! printf 'connect.sid=s%%3Aapple.D8Y%%2BpkTAmeR0PobOhY4G97PRW%%2Bj7bUnP%%2F5m6%%2FOn1MCU\n' \
//!   | cargo run -q --release --bin inspect -- --secret 'keyboard cat' --explain
//! ```
//!
//! Reads `Cookie` header lines from stdin as raw bytes, one per
//! `\n`-terminated line (no lines: no `Cookie` header), and prints one line
//! of JSON: `{"ok":bool,"sid":string|null,"reason":string}`. Exit status 0
//! for any verdict, 2 for usage errors. `inspect --help` lists the flags.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;

use session_sockets_core::codec::cookie::Limits;
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::{Config, HandshakeError};

/// Says whether, and why, `Cookie` header lines resolve to a session id as
/// express-session would: reads the lines from stdin (one per line, raw
/// bytes; no lines: no `Cookie` header) and prints
/// `{"ok":..,"sid":..,"reason":..}`.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// A secret of the HTTP app (repeat for rotation; the first signs).
    #[arg(
        long = "secret",
        value_name = "S",
        env = "SESSION_SECRET",
        hide_env_values = true,
        required = true
    )]
    secrets: Vec<String>,
    /// The session cookie name [default: connect.sid].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Accept ids without the `s:` signature prefix.
    #[arg(long)]
    accept_unsigned: bool,
    /// Explain the verdict on stderr.
    #[arg(long)]
    explain: bool,
}

/// Splits stdin into header lines: each `\n` ends one; bytes after the last
/// `\n` are a final line.
fn lines(input: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if input.is_empty() || input.ends_with(b"\n") {
        out.pop();
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = Config::builder()
        .secrets(&args.secrets)
        .accept_unsigned(args.accept_unsigned)
        // express-session has no bound of its own: report its verdict.
        .limits(Limits {
            max_header_bytes: usize::MAX,
            max_pairs: usize::MAX,
        });
    if let Some(name) = &args.name {
        builder = builder.cookie_name(name);
    }
    let config = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("inspect: cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let lines = lines(&input);
    let verdict = resolve_cookie(&config, lines.iter().copied());
    let line = match &verdict {
        Ok(sid) => format!(
            "{{\"ok\":true,\"sid\":{},\"reason\":\"ok\"}}",
            serde_json::Value::from(String::from_utf8_lossy(sid.expose()))
        ),
        Err(e) => format!(
            "{{\"ok\":false,\"sid\":null,\"reason\":\"{}\"}}",
            e.reason()
        ),
    };
    if args.explain {
        eprintln!("{}", explain(&config, lines.len(), &verdict));
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn explain(
    config: &Config,
    lines: usize,
    verdict: &Result<session_sockets_core::codec::resolve::ResolvedSid, HandshakeError>,
) -> String {
    let seen = format!(
        "{lines} Cookie header line(s) read; looking for cookie `{}` with {} secret(s){}.",
        config.cookie_name(),
        config.keys().len(),
        if config.accepts_unsigned() {
            ", unsigned ids accepted"
        } else {
            ""
        }
    );
    match verdict {
        Ok(sid) => format!(
            "{seen}\nok: the cookie verifies; express-session would load store key `{}` + the \
             {}-byte session id on stdout.",
            config.key_prefix(),
            sid.expose().len()
        ),
        Err(e) => format!("{seen}\n{}: {e}", e.reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::lines;

    #[test]
    fn stdin_lines_follow_the_interface() {
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n"), vec![&b""[..]]);
        assert_eq!(lines(b"a=1"), vec![&b"a=1"[..]]);
        assert_eq!(lines(b"a=1\nb=2\n"), vec![&b"a=1"[..], &b"b=2"[..]]);
        assert_eq!(lines(b"a=1\r\n"), vec![&b"a=1\r"[..]]);
    }
}
