//! The `Set-Cookie` header express-session writes, and the cookie settings
//! of new sessions.
//!
//! Serialization is npm `cookie` 0.7.2's `serialize` as express-session
//! 1.19.0 calls it with `Cookie#data`: the value percent-encoded with
//! `encodeURIComponent`, then `Domain`, `Path`, `Expires` (from the
//! session's `cookie.expires`, never `Max-Age`), `HttpOnly`, `Secure`,
//! `Partitioned`, `Priority` and `SameSite`, each only when set. Name, value,
//! path and domain are validated as `serialize` validates them (R3): a
//! header is never written with an injected attribute.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::{Config, is_cookie_name};
use crate::record::SessionCookie;
use crate::session::SessionId;
use crate::time::{millis, to_http_date};
use crate::write::WriteError;

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Lax`: sent on top-level navigations from other sites.
    Lax,
    /// `SameSite=Strict`: never sent from other sites.
    Strict,
    /// `SameSite=None`: always sent (browsers require `Secure` with it).
    None,
}

impl SameSite {
    /// The value express-session stores in the record (`"lax"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "lax",
            SameSite::Strict => "strict",
            SameSite::None => "none",
        }
    }
}

/// The cookie settings of new sessions: express-session's `cookie` option.
///
/// The defaults are express-session's: no `max_age` (a browser-session
/// cookie, stored with `expires: null`), not `Secure`, `HttpOnly`, path `/`,
/// no domain, no `SameSite`. Set them as the HTTP app sets them, so that a
/// session created from a socket gets the same cookie an HTTP route would
/// give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieOptions {
    /// `cookie.maxAge`: the cookie and the record expire this long after
    /// creation (or after each touch). `None`: a browser-session cookie.
    pub max_age: Option<Duration>,
    /// `cookie.secure`: send the cookie over HTTPS only (R14).
    pub secure: bool,
    /// `cookie.httpOnly`: hide the cookie from page scripts (default `true`).
    pub http_only: bool,
    /// `cookie.path` (default `/`): printable ASCII except `;` and `<`.
    pub path: String,
    /// `cookie.domain`: a host name such as `example.com`.
    pub domain: Option<String>,
    /// `cookie.sameSite`.
    pub same_site: Option<SameSite>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            max_age: None,
            secure: false,
            http_only: true,
            path: "/".into(),
            domain: None,
            same_site: None,
        }
    }
}

impl CookieOptions {
    /// The `cookie` object express-session gives a session created at `now`:
    /// `originalMaxAge` and `expires` from `max_age`, then the flags.
    pub fn to_session_cookie(&self, now: SystemTime) -> SessionCookie {
        let max_age_ms = self
            .max_age
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut cookie = SessionCookie::new(max_age_ms, millis(now));
        if self.secure {
            cookie.set_field("secure", Value::Bool(true));
        }
        if !self.http_only {
            cookie.set_field("httpOnly", Value::Bool(false));
        }
        if self.path != "/" {
            cookie.set_field("path", Value::String(self.path.clone()));
        }
        if let Some(domain) = &self.domain {
            cookie.set_field("domain", Value::String(domain.clone()));
        }
        if let Some(same_site) = self.same_site {
            cookie.set_field("sameSite", Value::String(same_site.as_str().into()));
        }
        cookie
    }
}

/// The full `Set-Cookie` header value express-session writes for session
/// `sid` with the settings in `cookie`, e.g.
/// `connect.sid=s%3A<sid>.<signature>; Path=/; HttpOnly`.
///
/// The value is signed with the first secret. Fails with
/// [`WriteError::InvalidCookie`] where npm `cookie`'s `serialize` would
/// throw (a bad domain, path, priority or sameSite in the record's cookie).
/// The result holds the signed id: never log it.
pub fn set_cookie(
    config: &Config,
    sid: &SessionId,
    cookie: &SessionCookie,
) -> Result<String, WriteError> {
    let mut value = String::with_capacity(96);
    encode_uri_component(&mut value, &config.sign(sid.expose()));
    serialize(config, &value, cookie)
}

/// The `Set-Cookie` header value that removes the session cookie from the
/// browser at logout, with the configured `Domain`, `Path` and flags so that
/// it matches the cookie it replaces: what Express's
/// `res.clearCookie(name, options)` writes, e.g.
/// `connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly`.
pub fn clear_cookie(config: &Config) -> Result<String, WriteError> {
    let mut cookie = config.cookie().to_session_cookie(std::time::UNIX_EPOCH);
    // Express: `expires: new Date(1)`.
    cookie.set_expires(Some(1));
    serialize(config, "", &cookie)
}

/// npm `cookie` 0.7.2's `serialize` of the session cookie with an already
/// encoded value and the attributes in `cookie`.
fn serialize(config: &Config, value: &str, cookie: &SessionCookie) -> Result<String, WriteError> {
    let name = config.cookie_name();
    if !is_cookie_name(name.as_bytes()) {
        return Err(WriteError::InvalidCookie { field: "name" });
    }
    let mut out = String::with_capacity(name.len() + value.len() + 96);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    let fields = cookie.fields();
    if let Some(domain) = truthy_str(fields.get("domain"), "domain")? {
        if !is_cookie_domain(domain) {
            return Err(WriteError::InvalidCookie { field: "domain" });
        }
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    // express-session's Cookie constructor defaults `path` to `/` and
    // `httpOnly` to `true` before copying the stored fields over them.
    let default_path = Value::String("/".into());
    let path = fields.get("path").unwrap_or(&default_path);
    if let Some(path) = truthy_str(Some(path), "path")? {
        if !is_cookie_path(path) {
            return Err(WriteError::InvalidCookie { field: "path" });
        }
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(expires) = cookie.expires_ms() {
        out.push_str("; Expires=");
        out.push_str(&to_http_date(expires));
    }
    if truthy(Some(fields.get("httpOnly").unwrap_or(&Value::Bool(true)))) {
        out.push_str("; HttpOnly");
    }
    if truthy(fields.get("secure")) {
        out.push_str("; Secure");
    }
    if truthy(fields.get("partitioned")) {
        out.push_str("; Partitioned");
    }
    if truthy(fields.get("priority")) {
        let p = fields
            .get("priority")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        out.push_str(match p.as_deref() {
            Some("low") => "; Priority=Low",
            Some("medium") => "; Priority=Medium",
            Some("high") => "; Priority=High",
            _ => return Err(WriteError::InvalidCookie { field: "priority" }),
        });
    }
    match fields.get("sameSite") {
        Some(Value::Bool(true)) => out.push_str("; SameSite=Strict"),
        v if truthy(v) => {
            let s = v.and_then(Value::as_str).map(str::to_ascii_lowercase);
            out.push_str(match s.as_deref() {
                Some("lax") => "; SameSite=Lax",
                Some("strict") => "; SameSite=Strict",
                Some("none") => "; SameSite=None",
                _ => return Err(WriteError::InvalidCookie { field: "sameSite" }),
            });
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
fn truthy_str<'a>(
    v: Option<&'a Value>,
    field: &'static str,
) -> Result<Option<&'a str>, WriteError> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        v if truthy(v) => Err(WriteError::InvalidCookie { field }),
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

/// npm `cookie`'s `pathValueRegExp`: `[\x20-\x3A\x3D-\x7E]*`, so printable
/// ASCII except `;` and `<` (R3).
pub(crate) fn is_cookie_path(path: &str) -> bool {
    path.bytes()
        .all(|b| (0x20..=0x3a).contains(&b) || (0x3d..=0x7e).contains(&b))
}

/// npm `cookie`'s `domainValueRegExp`: an optional leading `.`, then labels
/// of 1-63 letters, digits and inner `-`, separated by `.` (R3).
pub(crate) fn is_cookie_domain(domain: &str) -> bool {
    let rest = domain.strip_prefix('.').unwrap_or(domain);
    !rest.is_empty()
        && rest.split('.').all(|label| {
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
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn clear_cookie_matches_the_configured_cookie() {
        use super::*;
        let config = Config::builder().secret("s").build().unwrap();
        assert_eq!(
            clear_cookie(&config).unwrap(),
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
            clear_cookie(&config).unwrap(),
            "sid=; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; SameSite=Lax"
        );
    }

    use super::*;

    #[test]
    fn encode_uri_component_matches_javascript() {
        let mut s = String::new();
        encode_uri_component(&mut s, "s:a+b/c=.d-_!~*'() %é;");
        assert_eq!(s, "s%3Aa%2Bb%2Fc%3D.d-_!~*'()%20%25%C3%A9%3B");
    }

    #[test]
    fn r3_path_and_domain_follow_npm_cookie() {
        for ok in ["/", "", "/app", "/a b", "/a=b:c"] {
            assert!(is_cookie_path(ok), "{ok}");
        }
        for bad in ["/a;b", "/a<b", "/a\nb", "/é", "/\x7f"] {
            assert!(!is_cookie_path(bad), "{bad}");
        }
        for ok in [
            "example.com",
            ".example.com",
            "a",
            "a-b.c0",
            "EXAMPLE.com",
            "127.0.0.1",
        ] {
            assert!(is_cookie_domain(ok), "{ok}");
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
            assert!(!is_cookie_domain(bad), "{bad}");
        }
        assert!(is_cookie_domain(&"a".repeat(63)));
        assert!(!is_cookie_domain(&"a".repeat(64)));
    }
}
