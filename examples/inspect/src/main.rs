//! `inspect`: says whether, and why, `Cookie` header lines resolve to a
//! session id exactly as the HTTP app would: express-session (the default),
//! tower-sessions or actix-session.
//!
//! ```text
//! printf 'connect.sid=s%%3Aapple.D8Y%%2BpkTAmeR0PobOhY4G97PRW%%2Bj7bUnP%%2F5m6%%2FOn1MCU\n' \
//!   | cargo run -q --release --bin inspect -- --secret 'keyboard cat' --explain
//! printf 'id=...\n' | inspect --format tower-sessions --mode private --key BASE64 --explain
//! printf 'id=...\n' | inspect --format actix-session --key BASE64 --explain
//! ```
//!
//! `--key` is the standard base64 of the app's 64-byte `cookie::Key`
//! (repeat to try several, as a rotation would).
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
use session_sockets_core::format::actix_session::CookieContentSecurity;
use session_sockets_core::format::{actix_session, tower_sessions};
use session_sockets_core::{Config, ConfigBuilder, Format, HandshakeError};

/// Says whether, and why, `Cookie` header lines resolve to a session id as
/// the HTTP app would: reads the lines from stdin (one per line, raw
/// bytes; no lines: no `Cookie` header) and prints
/// `{"ok":..,"sid":..,"reason":..}`.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = None,
    override_usage = "inspect --secret <S> [OPTIONS]\n       \
                      inspect --format <tower-sessions|actix-session> [--mode <MODE>] [--key <BASE64>] [OPTIONS]"
)]
struct Args {
    /// The HTTP app's session format.
    #[arg(long, value_enum, default_value_t = FormatArg::ExpressSession)]
    format: FormatArg,
    /// express-session: a secret of the HTTP app (repeat for rotation; the
    /// first signs).
    #[arg(
        long = "secret",
        value_name = "S",
        env = "SESSION_SECRET",
        hide_env_values = true,
        required_if_eq("format", "express-session")
    )]
    secrets: Vec<String>,
    /// tower-sessions and actix-session: the standard base64 of the app's
    /// 64-byte cookie key (repeat to try several).
    #[arg(
        long = "key",
        value_name = "BASE64",
        env = "SESSION_KEY",
        hide_env_values = true
    )]
    keys: Vec<String>,
    /// How the cookie carries the id [default: tower-sessions plain,
    /// actix-session private].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// The session cookie name [default: connect.sid, or id].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// express-session: accept ids without the `s:` signature prefix.
    #[arg(long)]
    accept_unsigned: bool,
    /// Explain the verdict on stderr.
    #[arg(long)]
    explain: bool,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// express-session 1.x.
    ExpressSession,
    /// tower-sessions 0.14.
    TowerSessions,
    /// actix-session 0.10 / 0.11.
    ActixSession,
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The cookie is the id (tower-sessions' default).
    Plain,
    /// The `cookie` crate's signed value.
    Signed,
    /// The `cookie` crate's private value (actix-session's default).
    Private,
}

/// The config `args` describe; the message says what is wrong.
fn config(args: &Args) -> Result<ConfigBuilder, String> {
    let express_only = !args.secrets.is_empty() || args.accept_unsigned;
    let keys = || {
        if args.keys.is_empty() {
            return Err(
                "signed and private cookies need the app's key: pass --key BASE64".to_owned(),
            );
        }
        Ok(args.keys.clone())
    };
    let format: Format = match (args.format, args.mode) {
        (FormatArg::ExpressSession, None) if args.keys.is_empty() => {
            let mut builder = Config::builder()
                .secrets(&args.secrets)
                .accept_unsigned(args.accept_unsigned);
            if let Some(name) = &args.name {
                builder = builder.cookie_name(name);
            }
            return Ok(builder);
        }
        (FormatArg::ExpressSession, _) => {
            return Err("--key and --mode are for tower-sessions and actix-session".into());
        }
        (_, _) if express_only => {
            return Err("--secret and --accept-unsigned are express-session's".into());
        }
        (FormatArg::TowerSessions, mode) => {
            let mut s = Format::tower_sessions();
            if let Some(name) = &args.name {
                s = s.with_name(name);
            }
            match mode.unwrap_or(Mode::Plain) {
                Mode::Plain => s,
                Mode::Signed => s.with_signed(keys()?).map_err(|e| e.to_string())?,
                Mode::Private => s.with_private(keys()?).map_err(|e| e.to_string())?,
            }
            .into()
        }
        (FormatArg::ActixSession, mode) => {
            let mut s = Format::actix_session(keys()?).map_err(|e| e.to_string())?;
            if let Some(name) = &args.name {
                s = s.cookie_name(name);
            }
            match mode.unwrap_or(Mode::Private) {
                Mode::Private => s,
                Mode::Signed => s.cookie_content_security(CookieContentSecurity::Signed),
                Mode::Plain => return Err("actix-session cookies are private or signed".into()),
            }
            .into()
        }
    };
    Ok(Config::builder().format(format))
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
    let builder = match config(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("inspect: {e}");
            return ExitCode::from(2);
        }
    };
    // The frameworks have no bound of their own: report their verdict.
    let builder = builder.limits(Limits {
        max_header_bytes: usize::MAX,
        max_pairs: usize::MAX,
    });
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
    let with = match config.format() {
        Format::TowerSessions(s) => match &s.protection {
            tower_sessions::Protection::Plain => "plain ids".to_owned(),
            tower_sessions::Protection::Signed(k) => format!("signed with {} key(s)", k.len()),
            tower_sessions::Protection::Private(k) => format!("private with {} key(s)", k.len()),
        },
        Format::ActixSession(s) => match &s.security {
            actix_session::ContentSecurity::Private(k) => {
                format!("private with {} key(s)", k.len())
            }
            actix_session::ContentSecurity::Signed(k) => format!("signed with {} key(s)", k.len()),
        },
        _ => format!(
            "{} secret(s){}",
            config.keys().len(),
            if config.accepts_unsigned() {
                ", unsigned ids accepted"
            } else {
                ""
            }
        ),
    };
    let seen = format!(
        "{lines} Cookie header line(s) read; looking for {} cookie `{}`, {with}.",
        config.format().name(),
        config.cookie_name(),
    );
    match verdict {
        Ok(sid) => format!(
            "{seen}\nok: the cookie verifies; {} would load store key `{}` + the {}-byte \
             session id on stdout.",
            config.format().name(),
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
