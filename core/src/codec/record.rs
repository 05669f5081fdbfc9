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
/// this session. Fields are kept exactly as stored (values, and the order
/// of unknown fields); accessors interpret them. The fields express-session
/// knows are kept by their place in its `Cookie#data` order, which is the
/// order they are written in.
#[derive(Clone, Debug)]
pub struct SessionCookie {
    /// The known fields present, in `COOKIE_ORDER`'s order: the field at
    /// index `i` of `COOKIE_ORDER` is here when bit `i` of `present` is set,
    /// after one field per lower bit set.
    known: Vec<Field>,
    /// Every other field, in stored order (express-session writes none).
    extra: Extra,
    expires: Option<i64>,
    present: u16,
}

/// A cookie's unknown fields: one pointer, and no allocation while there
/// are none (express-session writes none).
#[derive(Clone, Debug, Default)]
#[allow(clippy::box_collection)] // one word where a `Vec` takes three
struct Extra(Option<Box<Vec<(String, Value)>>>);

impl std::ops::Deref for Extra {
    type Target = [(String, Value)];

    fn deref(&self) -> &Self::Target {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl std::ops::DerefMut for Extra {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

/// Two cookies are equal when they hold the same fields with the same
/// values, whatever the order of the unknown ones (as two JSON objects).
impl PartialEq for SessionCookie {
    fn eq(&self, other: &Self) -> bool {
        self.expires == other.expires
            && self.present == other.present
            && self.known == other.known
            && self.extra.len() == other.extra.len()
            && self
                .extra
                .iter()
                .all(|(k, v)| other.extra.iter().any(|(k2, v2)| k == k2 && v == v2))
    }
}

/// A known cookie field's value, as stored, in a fifth of a [`Value`]'s
/// size (16 bytes: a tag and one word): a connected socket keeps its
/// session's cookie for as long as it is connected, and a `Value` takes 80
/// bytes whatever it holds. Cookie fields are almost always scalars.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Null,
    Bool(bool),
    /// A number, as `serde_json::Number` keeps it: exactly one of an
    /// unsigned integer, a negative integer or a finite float.
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    /// In `expires` only: a string that is exactly `Date#toISOString` of
    /// this time (what express-session stores there), kept as the time and
    /// written back as the same string.
    Iso(i64),
    /// Any other string (rare: `domain`), boxed to keep the field one word.
    #[allow(clippy::box_collection)] // a `Box<str>` takes two
    String(Box<String>),
    /// A string most cookies hold (`"/"`, `"lax"`, ...), without an
    /// allocation of its own.
    Common(Common),
    /// Arrays and objects.
    Other(Box<Value>),
}

impl Field {
    /// `value` as kept in the known field `i`.
    fn new(value: Value, i: u8) -> Self {
        match value {
            Value::Null => Field::Null,
            Value::Bool(b) => Field::Bool(b),
            Value::Number(n) => Field::number(&n),
            Value::String(s) => Field::string(s, i),
            other => Field::Other(Box::new(other)),
        }
    }

    /// The string `s` as kept in the known field `i`: in `expires`, as its
    /// time when it is exactly `Date#toISOString`'s text for it; elsewhere
    /// (and otherwise) as the string, which `path`, `domain` and the rest
    /// read.
    fn string<S: AsRef<str> + Into<String>>(s: S, i: u8) -> Self {
        if i == EXPIRES {
            if let Some(ms) = canonical_iso(s.as_ref()) {
                return Field::Iso(ms);
            }
        } else if let Some(common) = Common::of(s.as_ref()) {
            return Field::Common(common);
        }
        Field::String(Box::new(s.into()))
    }

    fn number(n: &serde_json::Number) -> Self {
        // Without `arbitrary_precision` a `Number` is one of the three, and
        // `as_f64` answers for every one of them.
        match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Field::PosInt(u),
            (None, Some(i), _) => Field::NegInt(i),
            (None, None, Some(f)) => Field::Float(f),
            (None, None, None) => Field::Null,
        }
    }

    /// The number this field holds, if it holds one.
    fn as_number(&self) -> Option<serde_json::Number> {
        match *self {
            Field::PosInt(u) => Some(u.into()),
            Field::NegInt(i) => Some(i.into()),
            Field::Float(f) => serde_json::Number::from_f64(f),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Bool(b) => Value::Bool(*b),
            Field::PosInt(_) | Field::NegInt(_) | Field::Float(_) => {
                self.as_number().map_or(Value::Null, Value::Number)
            }
            Field::Iso(ms) => Value::String(time::to_iso(*ms)),
            Field::String(s) => Value::String(String::clone(s)),
            Field::Common(i) => Value::String(i.as_str().to_owned()),
            Field::Other(v) => Value::clone(v),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Field::String(s) => Some(s),
            Field::Common(i) => Some(i.as_str()),
            _ => None,
        }
    }
}

/// Strings kept as [`Field::Common`]: the `path` express-session sets, and
/// the values of `sameSite` and `priority`. One byte where a `&'static str`
/// would take two words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Common {
    Slash,
    Lax,
    Strict,
    None,
    LaxTitle,
    StrictTitle,
    NoneTitle,
    Low,
    Medium,
    High,
}

impl Common {
    const ALL: [Common; 10] = [
        Common::Slash,
        Common::Lax,
        Common::Strict,
        Common::None,
        Common::LaxTitle,
        Common::StrictTitle,
        Common::NoneTitle,
        Common::Low,
        Common::Medium,
        Common::High,
    ];

    fn of(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn as_str(self) -> &'static str {
        match self {
            Common::Slash => "/",
            Common::Lax => "lax",
            Common::Strict => "strict",
            Common::None => "none",
            Common::LaxTitle => "Lax",
            Common::StrictTitle => "Strict",
            Common::NoneTitle => "None",
            Common::Low => "low",
            Common::Medium => "medium",
            Common::High => "high",
        }
    }
}

/// The time `s` names, if `s` is exactly what `Date#toISOString` writes
/// for it (so that writing the time back gives `s` again).
fn canonical_iso(s: &str) -> Option<i64> {
    if s.len() != 24 {
        return None;
    }
    let ms = time::parse_iso(s)?;
    (time::iso_bytes(ms)?[..] == *s.as_bytes()).then_some(ms)
}

/// The index of a field express-session knows.
fn known_index(name: &str) -> Option<u8> {
    // `COOKIE_ORDER` has 9 entries: every index fits a `u8`.
    COOKIE_ORDER
        .iter()
        .position(|k| *k == name)
        .and_then(|i| u8::try_from(i).ok())
}

impl SessionCookie {
    /// A cookie as express-session creates one: `originalMaxAge` and
    /// `expires` from `max_age_ms` (both `null` for a browser-session cookie),
    /// `httpOnly: true`, `path: "/"`.
    pub fn new(max_age_ms: Option<u64>, now_ms: i64) -> Self {
        let expires =
            max_age_ms.map(|m| now_ms.saturating_add(i64::try_from(m).unwrap_or(i64::MAX)));
        let mut cookie = SessionCookie {
            // The four fields below.
            known: Vec::with_capacity(4),
            extra: Extra::default(),
            expires: None,
            present: 0,
        };
        cookie.put(
            "originalMaxAge",
            max_age_ms.map_or(Value::Null, Value::from),
        );
        cookie.set_expires(expires);
        cookie.put("httpOnly", Value::Bool(true));
        cookie.put("path", Value::String("/".into()));
        cookie
    }

    /// Builds from a stored `cookie` object. `None` if `expires` is neither
    /// absent, `null` nor an ISO-8601 string.
    pub fn from_fields(fields: Map<String, Value>) -> Option<Self> {
        let mut cookie = SessionCookie {
            known: Vec::with_capacity(COOKIE_ORDER.len()),
            extra: Extra::default(),
            expires: None,
            present: 0,
        };
        for (k, v) in fields {
            cookie.put_owned(k, v);
        }
        cookie.parse_expires().then_some(cookie)
    }

    /// Gives back spare capacity (see [`Session::shrink_to_fit`](crate::Session::shrink_to_fit)).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.known.shrink_to_fit();
        if let Some(extra) = self.extra.0.as_mut() {
            extra.shrink_to_fit();
        }
    }

    /// Reads `expires` from the stored field; `false` if it is neither
    /// absent, `null` nor an ISO-8601 string.
    fn parse_expires(&mut self) -> bool {
        self.expires = match self.known_field(EXPIRES) {
            None | Some(Field::Null) => None,
            Some(Field::Iso(ms)) => Some(*ms),
            Some(Field::String(s)) => match time::parse_iso(s) {
                Some(ms) => Some(ms),
                None => return false,
            },
            Some(_) => return false,
        };
        true
    }

    /// The known field at `i` (an index into `COOKIE_ORDER`).
    fn known_field(&self, i: u8) -> Option<&Field> {
        self.present_at(i).and_then(|at| self.known.get(at))
    }

    /// Where the known field at `i` is in `known`, if it is present.
    fn present_at(&self, i: u8) -> Option<usize> {
        let bit = 1u16 << i;
        (self.present & bit != 0).then(|| self.place_of(i))
    }

    /// Where the known field at `i` is or would be in `known`: after the
    /// fields before it in `COOKIE_ORDER`.
    fn place_of(&self, i: u8) -> usize {
        // At most 16 bits are set: the count fits any `usize`.
        (self.present & ((1u16 << i) - 1)).count_ones() as usize
    }

    /// The known field `name`, if `name` is one and it is present.
    fn field(&self, name: &str) -> Option<&Field> {
        self.known_field(known_index(name)?)
    }

    /// Stores `value` under `name`, replacing a stored value in place.
    fn put(&mut self, name: &str, value: Value) {
        match known_index(name) {
            Some(i) => self.put_known(i, Field::new(value, i)),
            None => self.put_extra(name, || name.to_owned(), value),
        }
    }

    /// [`Self::put`] with an owned name.
    fn put_owned(&mut self, name: String, value: Value) {
        match known_index(&name) {
            Some(i) => self.put_known(i, Field::new(value, i)),
            None => match self.extra.iter_mut().find(|(k, _)| *k == name) {
                Some((_, v)) => *v = value,
                None => self.push_extra(name, value),
            },
        }
    }

    fn push_extra(&mut self, name: String, value: Value) {
        self.extra.0.get_or_insert_default().push((name, value));
    }

    fn put_known(&mut self, i: u8, value: Field) {
        let at = self.place_of(i);
        let bit = 1u16 << i;
        if self.present & bit != 0 {
            if let Some(field) = self.known.get_mut(at) {
                *field = value;
            }
        } else {
            // `at` counts present fields, so it is at most `known.len()`
            // (stored records list them in this order: usually the end).
            self.known.insert(at, value);
            self.present |= bit;
        }
    }

    fn put_extra(&mut self, name: &str, owned: impl FnOnce() -> String, value: Value) {
        match self.extra.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.push_extra(owned(), value),
        }
    }

    /// Every stored field, in the order express-session writes them: the
    /// fields it knows in its `Cookie#data` order, then the others in stored
    /// order. The values are copies (the cookie keeps them compactly).
    pub fn fields(&self) -> impl Iterator<Item = (&str, Value)> {
        self.stored().map(|(k, v)| (k, v.to_value()))
    }

    /// [`Self::fields`] as kept.
    fn stored(&self) -> impl Iterator<Item = (&str, FieldRef<'_>)> {
        COOKIE_ORDER
            .iter()
            .enumerate()
            .filter(|(i, _)| self.present & (1 << i) != 0)
            .zip(&self.known)
            .map(|((_, name), v)| (*name, FieldRef::Known(v)))
            .chain(
                self.extra
                    .iter()
                    .map(|(k, v)| (k.as_str(), FieldRef::Extra(v))),
            )
    }

    /// A copy of the stored field `name`, if present.
    pub fn get(&self, name: &str) -> Option<Value> {
        match known_index(name) {
            Some(i) => self.known_field(i).map(Field::to_value),
            None => self
                .extra
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }

    /// Sets a field (`secure`, `domain`, `sameSite`, ...). `expires` is
    /// managed by [`Self::set_expires`]; setting it here is ignored.
    pub fn set_field(&mut self, name: &str, value: Value) {
        if name != "expires" {
            self.put(name, value);
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
        let field = match ms {
            None => Field::Null,
            Some(e) if time::iso_bytes(e).is_some() => Field::Iso(e),
            // Outside years 0-9999: kept as the string, as a decode would.
            Some(e) => Field::String(Box::new(time::to_iso(e))),
        };
        self.put_known(EXPIRES, field);
    }

    /// `originalMaxAge` in milliseconds, if it is a number.
    pub fn original_max_age(&self) -> Option<i64> {
        match self.field("originalMaxAge")? {
            // As a float cast would: saturating.
            Field::PosInt(u) => Some(i64::try_from(*u).unwrap_or(i64::MAX)),
            Field::NegInt(i) => Some(*i),
            Field::Float(f) => Some(*f as i64),
            _ => None,
        }
    }

    /// Whether the record has expired at `now_ms` (`expires <= now`).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires.is_some_and(|e| e <= now_ms)
    }

    /// The `httpOnly` flag (express-session's default is `true`).
    pub fn http_only(&self) -> bool {
        match self.field("httpOnly") {
            Some(Field::Bool(b)) => *b,
            _ => true,
        }
    }

    /// The `secure` flag.
    pub fn secure(&self) -> bool {
        matches!(self.field("secure"), Some(Field::Bool(true)))
    }

    /// The cookie path (default `/`).
    pub fn path(&self) -> &str {
        self.field("path").and_then(Field::as_str).unwrap_or("/")
    }

    /// The cookie domain, if any.
    pub fn domain(&self) -> Option<&str> {
        self.field("domain").and_then(Field::as_str)
    }

    /// The `sameSite` setting as stored (`"lax"`, `"strict"`, `"none"`,
    /// `true`, `false`), if any.
    pub fn same_site(&self) -> Option<Value> {
        self.get("sameSite")
    }
}

/// The place of `expires` in `COOKIE_ORDER`.
const EXPIRES: u8 = 3;

/// A stored cookie field, borrowed.
#[derive(Clone, Copy)]
enum FieldRef<'a> {
    Known(&'a Field),
    Extra(&'a Value),
}

impl FieldRef<'_> {
    fn to_value(self) -> Value {
        match self {
            FieldRef::Known(f) => f.to_value(),
            FieldRef::Extra(v) => v.clone(),
        }
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
    /// A record of another format ([`Format`](crate::Format)) that is not
    /// what that format stores: the format's error names the part.
    Format(crate::format::RecordError),
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
            RecordError::Format(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<crate::format::RecordError> for RecordError {
    fn from(e: crate::format::RecordError) -> Self {
        RecordError::Format(e)
    }
}

/// Decodes a stored record.
///
/// One pass over the bytes builds the record directly: the top level is
/// read as a map whose `cookie` entry becomes the [`SessionCookie`] without
/// a JSON object in between, and every other entry goes straight into the
/// data. Anything the one pass does not take as it is (a record that is
/// not an object, has no `cookie` object, or a bad `expires`, or is not
/// JSON at all) is decoded again the plain way, so that the error is
/// exactly the one that names the problem.
pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    match decode_direct(bytes) {
        Some(record) => Ok(record),
        None => decode_plain(bytes),
    }
}

/// The one-pass decode; `None` for anything that is not a record.
fn decode_direct(bytes: &[u8]) -> Option<Record> {
    // UTF-8 checked once for the whole record, not string by string.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let record = serde::Deserializer::deserialize_map(&mut de, RecordVisitor).ok()?;
    de.end().ok()?;
    record
}

/// The record through a `Value`: the reference for what [`decode_direct`]
/// does, and the source of its errors.
fn decode_plain(bytes: &[u8]) -> Result<Record, RecordError> {
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

/// The top level of a record, read as a map. `None` when it has no
/// `cookie` object (or its last `cookie` entry is not one).
struct RecordVisitor;

impl<'de> serde::de::Visitor<'de> for RecordVisitor {
    type Value = Option<Record>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an express-session record")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = Map::with_capacity(8);
        // As in a JSON object, a repeated key keeps its first place and its
        // last value: the last `cookie` entry is the cookie.
        let mut cookie = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == "cookie" {
                cookie = map.next_value_seed(CookieSeed)?;
            } else {
                let value: Value = map.next_value()?;
                data.insert(key.into_owned(), value);
            }
        }
        Ok(cookie.map(|cookie| Record { cookie, data }))
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// The `cookie` object, read into a [`SessionCookie`] without a map. `None`
/// when its `expires` is bad; anything but an object is an error.
struct CookieSeed;

impl<'de> serde::de::DeserializeSeed<'de> for CookieSeed {
    type Value = Option<SessionCookie>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(CookieSeed)
    }
}

impl<'de> serde::de::Visitor<'de> for CookieSeed {
    type Value = Option<SessionCookie>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a cookie object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut cookie = SessionCookie {
            known: Vec::with_capacity(COOKIE_ORDER.len()),
            extra: Extra::default(),
            expires: None,
            present: 0,
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match known_index(&key) {
                Some(i) => {
                    let field = map.next_value_seed(FieldSeed(i))?;
                    cookie.put_known(i, field);
                }
                None => {
                    let value: Value = map.next_value()?;
                    cookie.put_owned(key.into_owned(), value);
                }
            }
        }
        Ok(cookie.parse_expires().then_some(cookie))
    }
}

/// The known cookie field at this index, read straight into a [`Field`]:
/// what [`Field::new`] makes of the `Value` that `serde_json`'s own visitor
/// would build, without building it (nor, in `expires`, the string of a
/// canonical ISO date) for scalars.
struct FieldSeed(u8);

impl<'de> serde::de::DeserializeSeed<'de> for FieldSeed {
    type Value = Field;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldSeed {
    type Value = Field;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
        Ok(Field::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        // As `serde_json::Number` keeps it: non-negative ones as unsigned.
        Ok(u64::try_from(v).map_or(Field::NegInt(v), Field::PosInt))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(Field::PosInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
        // As `Value` does: a JSON number is always finite.
        Ok(if v.is_finite() {
            Field::Float(v)
        } else {
            Field::Null
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::string(v, self.0))
    }

    fn visit_string<E>(self, v: String) -> Result<Field, E> {
        Ok(Field::string(v, self.0))
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
        let v = serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Field::Other(Box::new(v)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        let v = serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Field::Other(Box::new(v)))
    }
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
    let mut keys: Vec<(&str, FieldRef<'_>)> = cookie.stored().collect();
    // Cookie fields are named, never integer-like, but keep the rule whole.
    js_order(&mut keys);
    out.push(b'{');
    for (i, (k, v)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, k);
        out.push(b':');
        match v {
            FieldRef::Known(f) => write_field(out, f),
            FieldRef::Extra(v) => write_value(out, v),
        }
    }
    out.push(b'}');
}

fn write_field(out: &mut Vec<u8>, f: &Field) {
    match f {
        Field::Null => out.extend_from_slice(b"null"),
        Field::Bool(true) => out.extend_from_slice(b"true"),
        Field::Bool(false) => out.extend_from_slice(b"false"),
        Field::PosInt(_) | Field::NegInt(_) | Field::Float(_) => match f.as_number() {
            Some(n) => write_number(out, &n),
            None => out.extend_from_slice(b"null"),
        },
        // An ISO date needs no escapes. Only times with the 24-byte form
        // are kept as `Iso`; the other arm is for completeness.
        Field::Iso(ms) => match time::iso_bytes(*ms) {
            Some(iso) => {
                out.push(b'"');
                out.extend_from_slice(&iso);
                out.push(b'"');
            }
            None => write_string(out, &time::to_iso(*ms)),
        },
        Field::String(s) => write_string(out, s),
        Field::Common(i) => write_string(out, i.as_str()),
        Field::Other(v) => write_value(out, v),
    }
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
    fn cookie_fields_kept_compactly_write_back_the_bytes_they_were_read_from() {
        // A canonical `expires` is kept as its time; one written any other
        // way (no milliseconds, an offset), or an ISO-looking string in
        // another field, comes back exactly as stored.
        for record in [
            r#"{"cookie":{"originalMaxAge":86400000,"expires":"2026-11-29T13:14:27.949Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"user":"ada"}"#,
            r#"{"cookie":{"expires":"2026-11-29T13:14:27Z","path":"/"}}"#,
            r#"{"cookie":{"expires":"2026-11-29T14:14:27.949+01:00"}}"#,
            r#"{"cookie":{"originalMaxAge":1.5,"priority":"2026-11-29T13:14:27.949Z","domain":"x","sameSite":{"k":true},"zz":[1,{"a":null}]}}"#,
        ] {
            let rec = decode(record.as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8(encode(&rec.cookie, &rec.data)).unwrap(),
                record
            );
        }
        let rec = decode(br#"{"cookie":{"expires":"2026-11-29T13:14:27Z","priority":"2026-11-29T13:14:27.949Z"}}"#).unwrap();
        assert_eq!(rec.cookie.expires_ms(), Some(1_795_958_067_000));
        assert_eq!(
            rec.cookie.get("expires"),
            Some(Value::from("2026-11-29T13:14:27Z"))
        );
        assert_eq!(
            rec.cookie.get("priority"),
            Some(Value::from("2026-11-29T13:14:27.949Z"))
        );
        // A field read as a string stays one, whatever it looks like.
        let iso = "2026-11-29T13:14:27.949Z";
        let strings =
            decode(format!(r#"{{"cookie":{{"domain":"{iso}","path":"{iso}"}}}}"#).as_bytes())
                .unwrap();
        assert_eq!(
            (strings.cookie.domain(), strings.cookie.path()),
            (Some(iso), iso)
        );
        // The same cookie, however its `expires` was set, is equal.
        let mut set = rec.cookie.clone();
        set.set_expires(Some(1_795_958_067_949));
        let read = decode(br#"{"cookie":{"expires":"2026-11-29T13:14:27.949Z","priority":"2026-11-29T13:14:27.949Z"}}"#).unwrap();
        assert_eq!(set, read.cookie);
        assert!(
            std::mem::size_of::<(u8, Field)>() <= 32,
            "a field is a third of a Value"
        );
        assert_eq!(COOKIE_ORDER[usize::from(EXPIRES)], "expires");
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

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The one-pass decode gives exactly the record of the plain one,
        /// whenever it gives one, on records and near-records alike.
        #[test]
        fn the_direct_decode_equals_the_plain_one(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", "\"cookie\"", "\"cooki\\u0065\"", "\"expires\"",
                    "\"2100-01-01T00:00:00.000Z\"", "\"tomorrow\"", "null", "1", "1.5e-7", "\"path\"",
                    "\"/\"", "\"a\"", "\"1\"", "true", " ", "\"zz\"", "{\"cookie\":{", "{\"a\":1}",
                ]),
                0..24,
            ).prop_map(|p| p.concat()),
        ) {
            let bytes = parts.as_bytes();
            let plain = decode_plain(bytes);
            match decode_direct(bytes) {
                Some(direct) => {
                    let plain = plain.expect("the plain decode agrees it is a record");
                    proptest::prop_assert!(direct == plain);
                    proptest::prop_assert_eq!(
                        direct.data.keys().collect::<Vec<_>>(),
                        plain.data.keys().collect::<Vec<_>>()
                    );
                    proptest::prop_assert_eq!(
                        encode(&direct.cookie, &direct.data),
                        encode(&plain.cookie, &plain.data)
                    );
                }
                None => proptest::prop_assert_eq!(decode(bytes).err(), plain.err()),
            }
        }
    }

    /// `"k":v` pairs from small sets, so that keys repeat.
    fn pairs() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "cookie",
                    "expires",
                    "path",
                    "domain",
                    "zz",
                    "1",
                    "a",
                    "b",
                    "cooki\\u0065",
                ]),
                proptest::sample::select(vec![
                    "null",
                    "1",
                    "-0",
                    "1.5e-7",
                    "\"/\"",
                    "\"2100-01-01T00:00:00.000Z\"",
                    "\"tomorrow\"",
                    "[1,{\"x\":2}]",
                    "{\"expires\":null,\"path\":\"/\"}",
                    "true",
                ]),
            ),
            0..8,
        )
        .prop_map(|kv| {
            kv.iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn the_direct_decode_equals_the_plain_one_on_records(
            cookie in pairs(),
            data in pairs(),
        ) {
            let json = format!("{{\"cookie\":{{{cookie}}},{data}}}");
            let json = json.replace(",}", "}");
            let bytes = json.as_bytes();
            let plain = decode_plain(bytes);
            match decode_direct(bytes) {
                Some(direct) => {
                    let plain = plain.expect("the plain decode agrees it is a record");
                    proptest::prop_assert!(direct == plain);
                    proptest::prop_assert_eq!(
                        encode(&direct.cookie, &direct.data),
                        encode(&plain.cookie, &plain.data)
                    );
                }
                None => proptest::prop_assert_eq!(decode(bytes).err(), plain.err()),
            }
        }
    }

    #[test]
    fn repeated_keys_keep_their_first_place_and_last_value() {
        for json in [
            &br#"{"cookie":{"path":"/a","zz":1,"path":"/b","zz":2},"a":1,"b":2,"a":3}"#[..],
            br#"{"cookie":{"expires":"tomorrow"},"cookie":{"expires":null}}"#,
        ] {
            let direct = decode_direct(json).expect("a record");
            let plain = decode_plain(json).unwrap();
            assert!(direct == plain);
            assert_eq!(
                encode(&direct.cookie, &direct.data),
                encode(&plain.cookie, &plain.data)
            );
        }
        // Left to the plain decode, which takes the last `cookie` entry.
        let json = br#"{"cookie":1,"a":1,"cookie":{"expires":null}}"#;
        assert_eq!(decode_direct(json).map(|_| ()), None);
        assert!(decode(json).unwrap() == decode_plain(json).unwrap());
        for bad in [
            &br#"{"cookie":{"expires":null},"cookie":1}"#[..],
            br#"{"cookie":{"expires":null},"cookie":{"expires":"x"}}"#,
        ] {
            assert_eq!(decode_direct(bad).map(|_| ()), None);
            assert!(decode(bad).is_err());
        }
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
