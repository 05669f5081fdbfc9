//! The part of MessagePack that tower-sessions records use, read and
//! written exactly as `rmp-serde` 1.3 does with its default (compact)
//! configuration: JSON values, 16-byte binaries, arrays and maps.
//!
//! Written here instead of taken from `rmp-serde` so that the core decides
//! its own bounds: nesting is limited ([`MAX_DEPTH`]), declared
//! lengths never allocate more than the input could hold, and nothing
//! panics; `tests/formats` checks it against `rmp-serde` byte for byte.

use serde_json::{Map, Number, Value};

/// How deep arrays and maps may nest: serde_json's own limit for JSON
/// text. (rmp-serde allows 1024, which overflows a 2 MiB stack in debug
/// builds; a record nested deeper than 128 is refused, failing closed.)
pub(crate) const MAX_DEPTH: usize = 128;

/// Where and why reading stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) offset: usize,
    pub(crate) problem: &'static str,
}

/// One MessagePack item's head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Head<'a> {
    Nil,
    Bool(bool),
    /// Any unsigned integer marker.
    Uint(u64),
    /// Any signed integer marker (negative fixint or int 8-64).
    Int(i64),
    F32(f32),
    F64(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    /// An array of this many items (which follow).
    Array(u32),
    /// A map of this many pairs (which follow).
    Map(u32),
}

/// A cursor over MessagePack bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Where the next item starts.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn error(&self, problem: &'static str) -> Error {
        Error {
            offset: self.pos,
            problem,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.error("truncated"))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.error("truncated"))?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn len_of(&mut self, n: u32) -> Result<&'a [u8], Error> {
        let n = usize::try_from(n).map_err(|_| self.error("truncated"))?;
        self.take(n)
    }

    /// The next item's head; an array or map head says how many items
    /// follow, which the caller reads.
    pub(crate) fn head(&mut self) -> Result<Head<'a>, Error> {
        let at = self.pos;
        let marker = self.u8()?;
        let head = match marker {
            0x00..=0x7f => Head::Uint(u64::from(marker)),
            0x80..=0x8f => Head::Map(u32::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(u32::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(self.len_of(u32::from(marker & 0x1f))?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => {
                let n = self.u8()?;
                Head::Bin(self.len_of(u32::from(n))?)
            }
            0xc5 => {
                let n = self.u16()?;
                Head::Bin(self.len_of(u32::from(n))?)
            }
            0xc6 => {
                let n = self.u32()?;
                Head::Bin(self.len_of(n)?)
            }
            0xca => Head::F32(f32::from_bits(self.u32()?)),
            0xcb => Head::F64(f64::from_bits(self.u64()?)),
            0xcc => Head::Uint(u64::from(self.u8()?)),
            0xcd => Head::Uint(u64::from(self.u16()?)),
            0xce => Head::Uint(u64::from(self.u32()?)),
            0xcf => Head::Uint(self.u64()?),
            0xd0 => Head::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Head::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Head::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Head::Int(i64::from_be_bytes(self.array()?)),
            0xd9 => {
                let n = self.u8()?;
                Head::Str(self.len_of(u32::from(n))?)
            }
            0xda => {
                let n = self.u16()?;
                Head::Str(self.len_of(u32::from(n))?)
            }
            0xdb => {
                let n = self.u32()?;
                Head::Str(self.len_of(n)?)
            }
            0xdc => Head::Array(u32::from(self.u16()?)),
            0xdd => Head::Array(self.u32()?),
            0xde => Head::Map(u32::from(self.u16()?)),
            0xdf => Head::Map(self.u32()?),
            0xe0..=0xff => Head::Int(i64::from(i8::from_be_bytes([marker]))),
            // 0xc1 (never used) and the extension types: no JSON value.
            _ => {
                self.pos = at;
                return Err(self.error("a marker no JSON value has (extension or reserved)"));
            }
        };
        Ok(head)
    }

    /// How many items of at least one byte each could still follow: a
    /// declared count past it is truncated input, found before allocating.
    fn check_count(&self, count: u32, per_item: usize) -> Result<usize, Error> {
        let count = usize::try_from(count).map_err(|_| self.error("truncated"))?;
        let left = self.buf.len().saturating_sub(self.pos);
        if count.saturating_mul(per_item) > left {
            return Err(self.error("truncated"));
        }
        Ok(count)
    }

    /// A JSON value, as rmp-serde deserializes a `serde_json::Value`.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let at = self.pos;
        Ok(match self.head()? {
            Head::Nil => Value::Null,
            Head::Bool(b) => Value::Bool(b),
            Head::Uint(u) => Value::Number(u.into()),
            Head::Int(i) => Value::Number(i.into()),
            // serde_json keeps no NaN or infinity: they become null.
            Head::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
            Head::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Head::Str(s) => Value::String(self.utf8(s, at)?),
            Head::Bin(_) => {
                self.pos = at;
                return Err(self.error("binary data where a JSON value belongs"));
            }
            Head::Array(n) => {
                let depth = self.deeper(depth, at)?;
                let n = self.check_count(n, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth)?);
                }
                Value::Array(items)
            }
            Head::Map(n) => {
                let depth = self.deeper(depth, at)?;
                let n = self.check_count(n, 2)?;
                let mut map = Map::new();
                for _ in 0..n {
                    let key_at = self.pos;
                    let Head::Str(key) = self.head()? else {
                        self.pos = key_at;
                        return Err(self.error("a map key that is not a string"));
                    };
                    let key = self.utf8(key, key_at)?;
                    let value = self.value(depth)?;
                    // As serde_json: a repeated key keeps its place and
                    // takes the later value.
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        })
    }

    pub(crate) fn deeper(&self, depth: usize, at: usize) -> Result<usize, Error> {
        if depth >= MAX_DEPTH {
            return Err(Error {
                offset: at,
                problem: "nested too deep",
            });
        }
        Ok(depth + 1)
    }

    pub(crate) fn utf8(&self, s: &[u8], at: usize) -> Result<String, Error> {
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(Error {
                offset: at,
                problem: "a string that is not UTF-8",
            }),
        }
    }

    /// A count of items the caller reads next, checked against what is left.
    pub(crate) fn count(&self, n: u32, per_item: usize) -> Result<usize, Error> {
        self.check_count(n, per_item)
    }
}

/// rmp's `write_uint`: the smallest unsigned form.
pub(crate) fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        // In range: one byte.
        out.push(v as u8);
    } else if let Ok(v) = u8::try_from(v) {
        out.extend_from_slice(&[0xcc, v]);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(0xcd);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.push(0xce);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// rmp's `write_sint`: negative numbers in the smallest signed form,
/// others as [`write_uint`].
pub(crate) fn write_sint(out: &mut Vec<u8>, v: i64) {
    match u64::try_from(v) {
        Ok(u) => write_uint(out, u),
        Err(_) => {
            if v >= -32 {
                out.extend_from_slice(&(v as i8).to_be_bytes());
            } else if let Ok(v) = i8::try_from(v) {
                out.push(0xd0);
                out.extend_from_slice(&v.to_be_bytes());
            } else if let Ok(v) = i16::try_from(v) {
                out.push(0xd1);
                out.extend_from_slice(&v.to_be_bytes());
            } else if let Ok(v) = i32::try_from(v) {
                out.push(0xd2);
                out.extend_from_slice(&v.to_be_bytes());
            } else {
                out.push(0xd3);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
}

/// A length: in the marker up to `fix_max`, then after `m8` (if the kind
/// has one), `m16` or `m32`.
fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: u8,
    fix_max: usize,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
) {
    if len <= fix_max {
        // `len <= 31`: fits the marker's low bits.
        out.push(fix | len as u8);
    } else if let (Some(m8), Ok(l)) = (m8, u8::try_from(len)) {
        out.extend_from_slice(&[m8, l]);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(m16);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        // Lengths past u32 cannot be written by rmp either; saturate.
        out.push(m32);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// rmp's `write_str`.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_len(out, s.len(), 0xa0, 31, Some(0xd9), 0xda, 0xdb);
    out.extend_from_slice(s.as_bytes());
}

/// rmp's `write_bin`: bin8, bin16 or bin32 (there is no fix form).
pub(crate) fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    if let Ok(l) = u8::try_from(b.len()) {
        out.extend_from_slice(&[0xc4, l]);
    } else if let Ok(l) = u16::try_from(b.len()) {
        out.push(0xc5);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// rmp's array length.
pub(crate) fn write_array_len(out: &mut Vec<u8>, len: usize) {
    write_len(out, len, 0x90, 15, None, 0xdc, 0xdd);
}

/// rmp's map length.
pub(crate) fn write_map_len(out: &mut Vec<u8>, len: usize) {
    write_len(out, len, 0x80, 15, None, 0xde, 0xdf);
}

/// A JSON value as rmp-serde serializes a `serde_json::Value`.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_uint(out, u);
            } else if let Some(i) = n.as_i64() {
                write_sint(out, i);
            } else {
                // Without `arbitrary_precision` a number that is neither
                // is a finite float.
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_be_bytes());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            write_array_len(out, items.len());
            for item in items {
                write_value(out, item);
            }
        }
        Value::Object(map) => {
            write_map_len(out, map.len());
            for (k, v) in map {
                write_str(out, k);
                write_value(out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_value(&mut out, v);
        out
    }

    #[test]
    fn integers_take_rmps_smallest_forms() {
        let cases: [(i64, &[u8]); 12] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (255, &[0xcc, 0xff]),
            (256, &[0xcd, 0x01, 0x00]),
            (65_536, &[0xce, 0, 1, 0, 0]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (-32_769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
            (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (v, bytes) in cases {
            assert_eq!(enc(&json!(v)), bytes, "{v}");
            assert_eq!(Reader::new(bytes).value(0).unwrap(), json!(v));
        }
        assert_eq!(
            enc(&json!(u64::MAX)),
            [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(enc(&json!(1.5)), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn values_round_trip_and_keep_key_order() {
        let v = json!({"z": [1, "two", null, true, {"b": -3.25, "a": []}], "a": "x".repeat(40)});
        let bytes = enc(&v);
        let back = Reader::new(&bytes).value(0).unwrap();
        assert_eq!(back, v);
        assert_eq!(enc(&back), bytes);
        assert_eq!(
            back.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "a"]
        );
    }

    #[test]
    fn lengths_switch_forms_at_rmps_bounds() {
        let s31 = enc(&json!("x".repeat(31)));
        assert_eq!(s31[0], 0xbf);
        assert_eq!(enc(&json!("x".repeat(32)))[..2], [0xd9, 32]);
        assert_eq!(enc(&json!("x".repeat(256)))[..3], [0xda, 1, 0]);
        assert_eq!(enc(&json!(vec![0; 16]))[..3], [0xdc, 0, 16]);
        let mut bin = Vec::new();
        write_bin(&mut bin, &[]);
        assert_eq!(bin, [0xc4, 0]);
        let mut bin = Vec::new();
        write_bin(&mut bin, &[7; 16]);
        assert_eq!(bin[..2], [0xc4, 16]);
    }

    #[test]
    fn r18_hostile_input_is_an_error_never_a_panic_or_a_huge_allocation() {
        for bad in [
            &[][..],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0xa3, b'a'],
            &[0xa1, 0xff],
            &[0xc1],
            &[0xd4, 0, 0],
            &[0xc4, 1, 0],
            &[0x81, 0x01, 0x02],
        ] {
            assert!(Reader::new(bad).value(0).is_err(), "{bad:x?}");
        }
        let deep = vec![0x91; MAX_DEPTH + 1];
        assert_eq!(
            Reader::new(&deep).value(0).unwrap_err().problem,
            "nested too deep"
        );
        // Every byte string of up to two bytes: no panic.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = Reader::new(&[a, b]).value(0);
            }
        }
    }

    #[test]
    fn nan_and_f32_read_as_serde_json_does() {
        let nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(Reader::new(&nan).value(0).unwrap(), Value::Null);
        let f32_half = [0xca, 0x3f, 0x00, 0, 0];
        assert_eq!(Reader::new(&f32_half).value(0).unwrap(), json!(0.5));
    }
}
