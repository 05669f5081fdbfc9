//! The `Set-Cookie` header values express-session writes: the session
//! cookie ([`cookie_header`]) and its removal at logout
//! ([`clear_cookie_header`]), and what each part may hold
//! ([`CookieSyntaxError`]).
//!
//! Serialization is npm `cookie` 0.7.2's `serialize` as express-session
//! 1.19.0 calls it with `Cookie#data`: the value percent-encoded with
//! `encodeURIComponent`, then `Domain`, `Path`, `Expires` (from the
//! session's `cookie.expires`, never `Max-Age`), `HttpOnly`, `Secure`,
//! `Partitioned`, `Priority` and `SameSite`, each only when set. Name, value,
//! path and domain are validated as `serialize` validates them ([R3]): a
//! header is never written with an injected attribute.
//!
//! [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3

use std::time::Duration;

use serde_json::Value;

use crate::codec::record::SessionCookie;
use crate::config::Config;
use crate::session::SessionId;
use crate::time::to_http_date;

/// The full `Set-Cookie` header value express-session writes for session
/// `sid` with the settings in `cookie`, e.g.
/// `connect.sid=s%3A<sid>.<signature>; Path=/; HttpOnly`.
///
/// The value is signed with the first secret. Fails where npm `cookie`'s
/// `serialize` would throw (a bad domain, path, priority or sameSite in the
/// record's cookie). The result holds the signed id: never log it.
pub fn cookie_header(
    config: &Config,
    sid: &SessionId,
    cookie: &SessionCookie,
) -> Result<String, CookieSyntaxError> {
    let mut value = String::with_capacity(96);
    encode_uri_component(&mut value, &config.sign(sid.expose()));
    serialize(config, &value, cookie)
}

/// The `Set-Cookie` header value that removes the session cookie from the
/// browser at logout, with the configured `Domain`, `Path` and flags so that
/// it matches the cookie it replaces: what Express's
/// `res.clearCookie(name, options)` writes, e.g.
/// `connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly`.
pub fn clear_cookie_header(config: &Config) -> Result<String, CookieSyntaxError> {
    let mut cookie = config.cookie().to_session_cookie(std::time::UNIX_EPOCH);
    // Express: `expires: new Date(1)`.
    cookie.set_expires(Some(1));
    serialize(config, "", &cookie)
}

/// npm `cookie` 0.7.2's `serialize` of the session cookie with an already
/// encoded value and the attributes in `cookie`.
fn serialize(
    config: &Config,
    value: &str,
    cookie: &SessionCookie,
) -> Result<String, CookieSyntaxError> {
    let name = config.cookie_name();
    check_name(name.as_bytes())?;
    check_value(value.as_bytes())?;
    let mut out = String::with_capacity(name.len() + value.len() + 96);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    let domain = cookie.get("domain");
    if let Some(domain) = truthy_str(domain.as_ref(), CookieSyntaxError::Domain)? {
        check_domain(domain)?;
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    // express-session's Cookie constructor defaults `path` to `/` and
    // `httpOnly` to `true` before copying the stored fields over them.
    let path = cookie
        .get("path")
        .unwrap_or_else(|| Value::String("/".into()));
    if let Some(path) = truthy_str(Some(&path), CookieSyntaxError::Path)? {
        check_path(path)?;
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(expires) = cookie.expires_ms() {
        out.push_str("; Expires=");
        out.push_str(&to_http_date(expires));
    }
    if truthy(Some(&cookie.get("httpOnly").unwrap_or(Value::Bool(true)))) {
        out.push_str("; HttpOnly");
    }
    if truthy(cookie.get("secure").as_ref()) {
        out.push_str("; Secure");
    }
    if truthy(cookie.get("partitioned").as_ref()) {
        out.push_str("; Partitioned");
    }
    let priority = cookie.get("priority");
    if truthy(priority.as_ref()) {
        let p = priority.as_ref().and_then(Value::as_str);
        out.push_str(p.map_or(Err(CookieSyntaxError::Priority), priority_attribute)?);
    }
    match cookie.get("sameSite") {
        Some(Value::Bool(true)) => out.push_str("; SameSite=Strict"),
        v if truthy(v.as_ref()) => {
            let s = v.as_ref().and_then(Value::as_str);
            out.push_str(s.map_or(Err(CookieSyntaxError::SameSite), same_site_attribute)?);
        }
        _ => {}
    }
    Ok(out)
}

/// JavaScript truthiness of a JSON value (`undefined` is `None`).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// A truthy string field; a truthy non-string is refused rather than
/// guessing how JavaScript would print it.
fn truthy_str(
    v: Option<&Value>,
    invalid: CookieSyntaxError,
) -> Result<Option<&str>, CookieSyntaxError> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        v if truthy(v) => Err(invalid),
        _ => Ok(None),
    }
}

/// Appends `s` percent-encoded as JavaScript's `encodeURIComponent`: every
/// byte except `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as `%XX` (uppercase) of its
/// UTF-8 encoding.
pub fn encode_uri_component(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie_options::{CookieOptions, SameSite};

    #[test]
    fn clear_cookie_matches_the_configured_cookie() {
        let config = Config::builder().secret("s").build().unwrap();
        assert_eq!(
            clear_cookie_header(&config).unwrap(),
            "connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"
        );
        let config = Config::builder()
            .secret("s")
            .cookie_name("sid")
            .cookie(CookieOptions {
                secure: true,
                path: "/app".into(),
                domain: Some("example.com".into()),
                same_site: Some(SameSite::Lax),
                max_age: Some(std::time::Duration::from_secs(60)),
                ..CookieOptions::default()
            })
            .build()
            .unwrap();
        assert_eq!(
            clear_cookie_header(&config).unwrap(),
            "sid=; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn encode_uri_component_matches_javascript() {
        let mut s = String::new();
        encode_uri_component(&mut s, "s:a+b/c=.d-_!~*'() %é;");
        assert_eq!(s, "s%3Aa%2Bb%2Fc%3D.d-_!~*'()%20%25%C3%A9%3B");
    }
}

// ---- the syntax checks (npm cookie 0.7.2 serialize, R3) ----

// What `Set-Cookie` accepts in each part of the session cookie, exactly as
// npm `cookie` 0.7.2's `serialize` checks it ([R3]), and the error for a
// part that fails.
//
// A leaf: it depends on no other module of this crate, so that the config
// (which checks its cookie options when built), the header writer and the
// write machines can all use it.
//
// [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3

/// The part of the session cookie that `Set-Cookie` cannot carry. Never
/// holds the offending value (it may be the signed id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CookieSyntaxError {
    /// The name is not an RFC 6265 token.
    Name,
    /// The value has a byte outside RFC 6265's cookie-octets.
    Value,
    /// The domain is not a host name (npm `cookie`'s `domainValueRegExp`).
    Domain,
    /// The path has a control character, `;`, `<` or a non-ASCII byte.
    Path,
    /// `priority` is not `low`, `medium` or `high`.
    Priority,
    /// `sameSite` is not `true`, `lax`, `strict` or `none`.
    SameSite,
    /// The max age puts the expiry past `9999-12-31T23:59:59.999Z`, the last
    /// instant `Date#toISOString` writes with four digits.
    MaxAge,
}

impl CookieSyntaxError {
    /// The field's name as express-session's `Cookie` spells it: `name`,
    /// `value`, `domain`, `path`, `priority`, `sameSite` or `originalMaxAge`.
    pub fn field(&self) -> &'static str {
        match self {
            CookieSyntaxError::Name => "name",
            CookieSyntaxError::Value => "value",
            CookieSyntaxError::Domain => "domain",
            CookieSyntaxError::Path => "path",
            CookieSyntaxError::Priority => "priority",
            CookieSyntaxError::SameSite => "sameSite",
            CookieSyntaxError::MaxAge => "originalMaxAge",
        }
    }
}

impl std::fmt::Display for CookieSyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CookieSyntaxError::MaxAge => f.write_str(
                "the cookie's originalMaxAge puts the expiry past 9999-12-31, which \
                 express-session cannot write",
            ),
            other => write!(
                f,
                "the session cookie's `{}` cannot be written into a Set-Cookie header \
                 (npm cookie's serialize refuses it)",
                other.field()
            ),
        }
    }
}

impl std::error::Error for CookieSyntaxError {}

/// `9999-12-31T23:59:59.999Z` in milliseconds since the epoch: the last
/// expiry a record can hold.
pub(crate) const LAST_EXPIRES_MS: i64 = 253_402_300_799_999;

/// The longest `max_age` a config accepts: 1000 years, so that every expiry
/// counted from a present-day clock stays a four-digit-year date.
pub(crate) const MAX_MAX_AGE: Duration = Duration::from_secs(1000 * 365 * 86_400);

/// An RFC 6265 cookie name: one or more token characters (npm `cookie`'s
/// `cookieNameRegExp`).
pub(crate) fn check_name(name: &[u8]) -> Result<(), CookieSyntaxError> {
    let token = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
    };
    if !name.is_empty() && name.iter().all(|&b| token(b)) {
        Ok(())
    } else {
        Err(CookieSyntaxError::Name)
    }
}

/// RFC 6265 cookie-octets, optionally inside one pair of `"` (npm
/// `cookie`'s `cookieValueRegExp`).
pub(crate) fn check_value(value: &[u8]) -> Result<(), CookieSyntaxError> {
    let inner = match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    };
    let octet = |b: u8| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
    if inner.iter().all(|&b| octet(b)) {
        Ok(())
    } else {
        Err(CookieSyntaxError::Value)
    }
}

/// npm `cookie`'s `pathValueRegExp`: `[\x20-\x3A\x3D-\x7E]*`, so printable
/// ASCII except `;` and `<`.
pub(crate) fn check_path(path: &str) -> Result<(), CookieSyntaxError> {
    if path
        .bytes()
        .all(|b| (0x20..=0x3a).contains(&b) || (0x3d..=0x7e).contains(&b))
    {
        Ok(())
    } else {
        Err(CookieSyntaxError::Path)
    }
}

/// npm `cookie`'s `domainValueRegExp`: an optional leading `.`, then labels
/// of 1-63 letters, digits and inner `-`, separated by `.`.
pub(crate) fn check_domain(domain: &str) -> Result<(), CookieSyntaxError> {
    let rest = domain.strip_prefix('.').unwrap_or(domain);
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                b.len() <= 63
                    && first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    };
    if !rest.is_empty() && rest.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(CookieSyntaxError::Domain)
    }
}

/// The `Priority` attribute for a `priority` string, compared ASCII
/// case-insensitively as npm `cookie` lowercases it.
pub(crate) fn priority_attribute(priority: &str) -> Result<&'static str, CookieSyntaxError> {
    match priority.to_ascii_lowercase().as_str() {
        "low" => Ok("; Priority=Low"),
        "medium" => Ok("; Priority=Medium"),
        "high" => Ok("; Priority=High"),
        _ => Err(CookieSyntaxError::Priority),
    }
}

/// The `SameSite` attribute for a `sameSite` string, compared ASCII
/// case-insensitively (`true` is handled by the caller: it is not a string).
pub(crate) fn same_site_attribute(same_site: &str) -> Result<&'static str, CookieSyntaxError> {
    match same_site.to_ascii_lowercase().as_str() {
        "lax" => Ok("; SameSite=Lax"),
        "strict" => Ok("; SameSite=Strict"),
        "none" => Ok("; SameSite=None"),
        _ => Err(CookieSyntaxError::SameSite),
    }
}

/// An expiry (milliseconds since the epoch) a record can hold.
pub(crate) fn check_expires(ms: i64) -> Result<(), CookieSyntaxError> {
    if ms <= LAST_EXPIRES_MS {
        Ok(())
    } else {
        Err(CookieSyntaxError::MaxAge)
    }
}

/// A `max_age` a config accepts (at most [`MAX_MAX_AGE`]).
pub(crate) fn check_max_age(max_age: Duration) -> Result<(), CookieSyntaxError> {
    if max_age <= MAX_MAX_AGE {
        Ok(())
    } else {
        Err(CookieSyntaxError::MaxAge)
    }
}

#[cfg(test)]
mod syntax_tests {
    use super::*;

    #[test]
    fn r03_names_are_tokens() {
        for ok in ["connect.sid", "a", "sid_1", "!#$%&'*+-.^_`|~"] {
            assert_eq!(check_name(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a=b", "a;b", "a\"b", "é", "a\0", "a,b"] {
            assert_eq!(
                check_name(bad.as_bytes()),
                Err(CookieSyntaxError::Name),
                "{bad}"
            );
        }
    }

    #[test]
    fn r03_values_are_cookie_octets() {
        for ok in ["", "s%3Aabc.def", "\"quoted\"", "a!#+-:<[]~"] {
            assert_eq!(check_value(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in ["a b", "a;b", "a,b", "a\\b", "\"a", "a\"", "é", "a\x7f"] {
            assert_eq!(
                check_value(bad.as_bytes()),
                Err(CookieSyntaxError::Value),
                "{bad}"
            );
        }
    }

    #[test]
    fn r03_path_and_domain_follow_npm_cookie() {
        for ok in ["/", "", "/app", "/a b", "/a=b:c"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in ["/a;b", "/a<b", "/a\nb", "/é", "/\x7f"] {
            assert_eq!(check_path(bad), Err(CookieSyntaxError::Path), "{bad}");
        }
        for ok in [
            "example.com",
            ".example.com",
            "a",
            "a-b.c0",
            "EXAMPLE.com",
            "127.0.0.1",
        ] {
            assert_eq!(check_domain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..a",
            "a..b",
            "-a.com",
            "a-.com",
            "a.com.",
            "a_b.com",
            "a.com;x",
            "é.com",
            "a.com; Secure",
        ] {
            assert_eq!(check_domain(bad), Err(CookieSyntaxError::Domain), "{bad}");
        }
        assert_eq!(check_domain(&"a".repeat(63)), Ok(()));
        assert_eq!(
            check_domain(&"a".repeat(64)),
            Err(CookieSyntaxError::Domain)
        );
    }

    #[test]
    fn r03_priority_and_same_site_are_case_insensitive_keywords() {
        assert_eq!(priority_attribute("HIGH"), Ok("; Priority=High"));
        assert_eq!(
            priority_attribute("urgent"),
            Err(CookieSyntaxError::Priority)
        );
        assert_eq!(same_site_attribute("Lax"), Ok("; SameSite=Lax"));
        assert_eq!(
            same_site_attribute("true"),
            Err(CookieSyntaxError::SameSite)
        );
    }

    #[test]
    fn max_age_and_expiry_stay_within_four_digit_years() {
        assert_eq!(check_expires(LAST_EXPIRES_MS), Ok(()));
        assert_eq!(
            check_expires(LAST_EXPIRES_MS + 1),
            Err(CookieSyntaxError::MaxAge)
        );
        assert_eq!(check_max_age(MAX_MAX_AGE), Ok(()));
        assert_eq!(
            check_max_age(MAX_MAX_AGE + Duration::from_secs(1)),
            Err(CookieSyntaxError::MaxAge)
        );
    }
}
