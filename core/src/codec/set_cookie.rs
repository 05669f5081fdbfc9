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

use serde_json::Value;

pub use crate::codec::cookie_syntax::CookieSyntaxError;
use crate::codec::cookie_syntax::{
    check_domain, check_name, check_path, check_value, priority_attribute, same_site_attribute,
};
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
