//! Session records in express-session's JSON, as connect-redis stores them:
//! `{"cookie":{...},...data}`.
//!
//! Encoding writes what `JSON.stringify(session)` writes, byte for byte:
//! - the `cookie` object's fields in express-session's order
//!   (`originalMaxAge`, `partitioned`, `priority`, `expires`, `secure`,
//!   `httpOnly`, `domain`, `path`, `sameSite`, from `Cookie#data` in
//!   express-session 1.19.0), absent ones omitted, unknown ones kept after;
//! - object keys in JavaScript's order: integer-like keys (`"0"`, `"42"`)
//!   first in ascending order, then the others in insertion order;
//! - numbers as JavaScript prints them (`1e+21`, `1.5e-7`, `0.1`);
//! - strings escaped as `JSON.stringify` does.
//!
//! Decoding keeps every field and its order, so a record survives a round
//! trip unchanged.

use serde_json::{Map, Value};

use crate::time;

/// The express-session `Cookie#data` field order.
const COOKIE_ORDER: [&str; 9] = [
    "originalMaxAge",
    "partitioned",
    "priority",
    "expires",
    "secure",
    "httpOnly",
    "domain",
    "path",
    "sameSite",
];

/// The `cookie` object of a record: express-session's cookie settings for
/// this session. Fields are kept exactly as stored; accessors interpret them.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionCookie {
    fields: Map<String, Value>,
    expires: Option<i64>,
}

impl SessionCookie {
    /// A cookie as express-session creates one: `originalMaxAge` and
    /// `expires` from `max_age_ms` (both `null` for a browser-session cookie),
    /// `httpOnly: true`, `path: "/"`.
    pub fn new(max_age_ms: Option<u64>, now_ms: i64) -> Self {
        let mut fields = Map::new();
        let expires =
            max_age_ms.map(|m| now_ms.saturating_add(i64::try_from(m).unwrap_or(i64::MAX)));
        fields.insert(
            "originalMaxAge".into(),
            max_age_ms.map_or(Value::Null, Value::from),
        );
        fields.insert(
            "expires".into(),
            expires.map_or(Value::Null, |e| Value::String(time::to_iso(e))),
        );
        fields.insert("httpOnly".into(), Value::Bool(true));
        fields.insert("path".into(), Value::String("/".into()));
        SessionCookie { fields, expires }
    }

    /// Builds from a stored `cookie` object. `None` if `expires` is neither
    /// absent, `null` nor an ISO-8601 string.
    pub fn from_fields(fields: Map<String, Value>) -> Option<Self> {
        let expires = match fields.get("expires") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(time::parse_iso(s)?),
            Some(_) => return None,
        };
        Some(SessionCookie { fields, expires })
    }

    /// Every stored field, in stored order.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The stored field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// Sets a field (`secure`, `domain`, `sameSite`, ...). `expires` is
    /// managed by [`Self::set_expires`]; setting it here is ignored.
    pub fn set_field(&mut self, name: &str, value: Value) {
        if name != "expires" {
            self.fields.insert(name.to_owned(), value);
        }
    }

    /// When the cookie expires, in milliseconds since the epoch; `None` for
    /// a browser-session cookie.
    pub fn expires_ms(&self) -> Option<i64> {
        self.expires
    }

    /// Sets `expires` (`None` writes `null`).
    pub fn set_expires(&mut self, ms: Option<i64>) {
        self.expires = ms;
        self.fields.insert(
            "expires".into(),
            ms.map_or(Value::Null, |e| Value::String(time::to_iso(e))),
        );
    }

    /// `originalMaxAge` in milliseconds, if it is a number.
    pub fn original_max_age(&self) -> Option<i64> {
        let v = self.fields.get("originalMaxAge")?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// Whether the record has expired at `now_ms` (`expires <= now`).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires.is_some_and(|e| e <= now_ms)
    }

    /// The `httpOnly` flag (express-session's default is `true`).
    pub fn http_only(&self) -> bool {
        self.fields
            .get("httpOnly")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// The `secure` flag.
    pub fn secure(&self) -> bool {
        self.fields
            .get("secure")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The cookie path (default `/`).
    pub fn path(&self) -> &str {
        self.fields
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
    }

    /// The cookie domain, if any.
    pub fn domain(&self) -> Option<&str> {
        self.fields.get("domain").and_then(Value::as_str)
    }

    /// The `sameSite` setting as stored (`"lax"`, `"strict"`, `"none"`,
    /// `true`, `false`), if any.
    pub fn same_site(&self) -> Option<&Value> {
        self.fields.get("sameSite")
    }
}

/// A decoded record: the cookie and the session data, each in stored order.
/// `Debug` lists the data's keys, not its values.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// The `cookie` object.
    pub cookie: SessionCookie,
    /// Every other top-level field: the session's data.
    pub data: Map<String, Value>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("cookie", &self.cookie)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a stored record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not JSON (the message is serde_json's, which never quotes input).
    Json(String),
    /// JSON, but not an object.
    NotAnObject,
    /// No `cookie` object.
    NoCookie,
    /// `cookie.expires` is not `null` or an ISO-8601 date.
    BadExpires,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Json(e) => write!(f, "the record is not valid JSON ({e})"),
            RecordError::NotAnObject => f.write_str("the record is JSON but not an object"),
            RecordError::NoCookie => f.write_str("the record has no `cookie` object"),
            RecordError::BadExpires => {
                f.write_str("the record's `cookie.expires` is neither null nor an ISO-8601 date")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// Decodes a stored record.
pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's messages name a position and a category, never input.
        RecordError::Json(format!(
            "{} at line {} column {}",
            category(&e),
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut data) = value else {
        return Err(RecordError::NotAnObject);
    };
    let Some(Value::Object(cookie)) = data.shift_remove("cookie") else {
        return Err(RecordError::NoCookie);
    };
    let cookie = SessionCookie::from_fields(cookie).ok_or(RecordError::BadExpires)?;
    Ok(Record { cookie, data })
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Encodes a record as `JSON.stringify` of an express-session `Session`.
pub fn encode(cookie: &SessionCookie, data: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + data.len() * 32);
    // The top level is one JavaScript object whose first own property is
    // `cookie`; integer-like data keys still sort before it.
    let mut keys: Vec<(&str, Entry<'_>)> = Vec::with_capacity(data.len() + 1);
    keys.push(("cookie", Entry::Cookie));
    // A data key named `cookie` would duplicate the cookie object, and the
    // record would no longer load: the cookie field is the one written.
    keys.extend(
        data.iter()
            .filter(|(k, _)| k.as_str() != "cookie")
            .map(|(k, v)| (k.as_str(), Entry::Value(v))),
    );
    write_object(&mut out, keys, cookie);
    out
}

enum Entry<'a> {
    Cookie,
    Value(&'a Value),
}

fn write_object<'a>(
    out: &mut Vec<u8>,
    mut keys: Vec<(&'a str, Entry<'a>)>,
    cookie: &SessionCookie,
) {
    js_order(&mut keys);
    out.push(b'{');
    for (i, (k, v)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, k);
        out.push(b':');
        match v {
            Entry::Cookie => write_cookie(out, cookie),
            Entry::Value(v) => write_value(out, v),
        }
    }
    out.push(b'}');
}

fn write_cookie(out: &mut Vec<u8>, cookie: &SessionCookie) {
    let f = &cookie.fields;
    let mut keys: Vec<(&str, Entry<'_>)> = COOKIE_ORDER
        .iter()
        .filter_map(|k| f.get_key_value(*k))
        .chain(
            f.iter()
                .filter(|(k, _)| !COOKIE_ORDER.contains(&k.as_str())),
        )
        .map(|(k, v)| (k.as_str(), Entry::Value(v)))
        .collect();
    // Cookie fields are named, never integer-like, but keep the rule whole.
    js_order(&mut keys);
    out.push(b'{');
    for (i, (k, v)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, k);
        out.push(b':');
        if let Entry::Value(v) = v {
            write_value(out, v);
        }
    }
    out.push(b'}');
}

/// JavaScript's own-property order: array-index keys ascending, then the
/// rest in insertion order (a stable sort keeps the latter).
fn js_order<T>(keys: &mut [(&str, T)]) {
    if keys.iter().any(|(k, _)| array_index(k).is_some()) {
        keys.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
    }
}

/// The value of an ECMAScript array index: a canonical decimal below
/// 2^32 - 1.
fn array_index(k: &str) -> Option<u32> {
    let b = k.as_bytes();
    if b.is_empty()
        || b.len() > 10
        || !b.iter().all(u8::is_ascii_digit)
        || (b.len() > 1 && b[0] == b'0')
    {
        return None;
    }
    let n: u64 = k.parse().ok()?;
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            js_order(&mut keys);
            out.push(b'{');
            for (i, (k, v)) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON.stringify: `"`, `\`, \b \f \n \r \t,
    // other controls as lowercase \u00xx, nothing else. Writing into a Vec
    // cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Integers print as integers (kept exact even past 2^53, where JavaScript
/// would round); floats as JavaScript's `Number#toString`.
fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(js_number(f).as_bytes());
    }
}

/// ECMAScript `Number::toString(x)` for a finite `x` (ECMA-262 6.1.6.1.20),
/// from Rust's shortest round-trip digits.
pub(crate) fn js_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // serde_json values are always finite; -0 prints as 0.
        return "0".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // x = 0.digits * 10^n
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let esign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{esign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{esign}{}", e.abs())
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_javascript_does() {
        for (x, js) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.5e300, "1.5e+300"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123.456, "123.456"),
        ] {
            assert_eq!(js_number(x), js, "{x:e}");
        }
    }

    #[test]
    fn integer_like_keys_come_first_as_in_javascript() {
        let data: Map<String, Value> = serde_json::from_str(
            r#"{"b":1,"10":2,"a":{"2":0,"1":0,"x":0},"01":3,"4294967295":4,"3":5}"#,
        )
        .unwrap();
        let cookie = SessionCookie::new(None, 0);
        let out = String::from_utf8(encode(&cookie, &data)).unwrap();
        assert_eq!(
            out,
            r#"{"3":5,"10":2,"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"b":1,"a":{"1":0,"2":0,"x":0},"01":3,"4294967295":4}"#
        );
    }

    #[test]
    fn cookie_fields_follow_express_order_and_unknown_fields_stay() {
        let rec = decode(
            br#"{"cookie":{"zz":1,"path":"/","sameSite":"lax","expires":null,"httpOnly":true,"priority":"high","originalMaxAge":null,"partitioned":true},"k":"v"}"#,
        )
        .unwrap();
        let out = String::from_utf8(encode(&rec.cookie, &rec.data)).unwrap();
        assert_eq!(
            out,
            r#"{"cookie":{"originalMaxAge":null,"partitioned":true,"priority":"high","expires":null,"httpOnly":true,"path":"/","sameSite":"lax","zz":1},"k":"v"}"#
        );
    }

    #[test]
    fn strings_escape_as_json_stringify() {
        let data: Map<String, Value> =
            serde_json::from_str("{\"s\":\"a\\\"\\\\/\\u0001\\n\\u007f\\u2028é😀\"}").unwrap();
        let out = encode(&SessionCookie::new(None, 0), &data);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("\"s\":\"a\\\"\\\\/\\u0001\\n\u{7f}\u{2028}é😀\"}")
        );
    }

    #[test]
    fn a_data_key_named_cookie_never_duplicates_the_cookie_object() {
        let mut data = Map::new();
        data.insert("cookie".into(), Value::from("user data"));
        data.insert("user".into(), Value::from("ada"));
        let cookie = SessionCookie::new(None, 0);
        let bytes = encode(&cookie, &data);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.cookie, cookie);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ada"}"#
        );
    }

    #[test]
    fn record_debug_lists_keys_not_values() {
        let rec = decode(br#"{"cookie":{},"token":"s3cr3t"}"#).unwrap();
        let d = format!("{rec:?}");
        assert!(d.contains("token") && !d.contains("s3cr3t"), "{d}");
    }

    #[test]
    fn malformed_records_are_named() {
        assert!(matches!(decode(b"not json"), Err(RecordError::Json(_))));
        assert_eq!(decode(b"[1]"), Err(RecordError::NotAnObject));
        assert_eq!(decode(br#"{"a":1}"#), Err(RecordError::NoCookie));
        assert_eq!(decode(br#"{"cookie":1}"#), Err(RecordError::NoCookie));
        assert_eq!(
            decode(br#"{"cookie":{"expires":"tomorrow"}}"#),
            Err(RecordError::BadExpires)
        );
        assert_eq!(
            decode(br#"{"cookie":{"expires":5}}"#),
            Err(RecordError::BadExpires)
        );
        // The error never quotes the input.
        let e = decode(b"{\"cookie\":{}, \"secret-sid\" 1}").unwrap_err();
        assert!(!e.to_string().contains("secret-sid"), "{e}");
    }
}
