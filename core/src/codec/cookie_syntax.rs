//! What `Set-Cookie` accepts in each part of the session cookie, exactly as
//! npm `cookie` 0.7.2's `serialize` checks it ([R3]), and the error for a
//! part that fails.
//!
//! A leaf: it depends on no other module of this crate, so that the config
//! (which checks its cookie options when built), the header writer and the
//! write machines can all use it.
//!
//! [R3]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r3

use std::time::Duration;

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
mod tests {
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
