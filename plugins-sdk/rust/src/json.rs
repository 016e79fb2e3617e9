//! A small JSON reader for plugin configs (`spec.config`, which the proxy hands over as JSON).
//!
//! It parses RFC 8259 JSON into a [`Json`] tree. Limits, by design:
//! - numbers are `f64` (integers above 2^53 lose precision; there is no big-number type);
//! - objects keep their members in document order, lookups are linear, and with a repeated key
//!   [`Json::get`] returns the first one (configs are small; this is not a database);
//! - nesting is limited to [`MAX_DEPTH`] levels, so a hostile document cannot exhaust the stack;
//! - it only reads: there is no serializer, no serde-style mapping onto structs.
//!
//! Lone UTF-16 surrogates in `\u` escapes are replaced by U+FFFD, as JavaScript would print them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// How deep arrays and objects may nest.
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// members in document order
    Object(Vec<(String, Json)>),
}

/// Where and why a document did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// byte offset
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.at, self.what)
    }
}

static NULL: Json = Json::Null;
/// 2^53: past it not every integer has an f64
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

impl Json {
    /// Parses a whole document (surrounding whitespace allowed, nothing else).
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut p = Parser { s: text.as_bytes(), n: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.n != p.s.len() {
            return Err(p.err("trailing characters after the document"));
        }
        Ok(v)
    }

    /// The member `key` of an object; `None` for a missing key or a non-object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Element `i` of an array.
    pub fn at(&self, i: usize) -> Option<&Json> {
        match self {
            Json::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// Follows a path of object keys: `cfg.path(&["limits", "burst"])`. Missing → `Json::Null`.
    pub fn path(&self, keys: &[&str]) -> &Json {
        let mut v = self;
        for k in keys {
            match v.get(k) {
                Some(next) => v = next,
                None => return &NULL,
            }
        }
        v
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
    /// The number when it is an integer that fits an `i64` exactly (|n| ≤ 2^53).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) if *n == (*n as i64) as f64 && (-MAX_SAFE..=MAX_SAFE).contains(n) => Some(*n as i64),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    /// `get(key)` as a string, or `default` when missing or not a string.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).and_then(Json::as_str).unwrap_or(default)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    n: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { at: self.n, what }
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.n) {
            self.n += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.n).copied()
    }
    fn literal(&mut self, word: &'static str, v: Json) -> Result<Json, JsonError> {
        if self.s[self.n..].starts_with(word.as_bytes()) {
            self.n += word.len();
            Ok(v)
        } else {
            Err(self.err("unknown literal"))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                self.n += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.n += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.n += 1,
                        Some(b']') => {
                            self.n += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected , or ] in an array")),
                    }
                }
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                self.n += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.n += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key in an object"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected : after an object key"));
                    }
                    self.n += 1;
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.n += 1,
                        Some(b'}') => {
                            self.n += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(self.err("expected , or } in an object")),
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.n;
        while let Some(b'0'..=b'9') = self.peek() {
            self.n += 1;
        }
        self.n - start
    }
    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.n;
        if self.peek() == Some(b'-') {
            self.n += 1;
        }
        match self.peek() {
            Some(b'0') => self.n += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.n += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after ."));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.n += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.n += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        // the slice is ASCII by construction; core's parser is correctly rounded
        let text = core::str::from_utf8(&self.s[start..self.n]).map_err(|_| self.err("bad number"))?;
        text.parse::<f64>().map(Json::Number).map_err(|_| self.err("bad number"))
    }
    fn hex4(&mut self) -> Result<u32, JsonError> {
        if self.s.len() - self.n < 4 {
            return Err(self.err("truncated \\u escape"));
        }
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.s[self.n] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.err("bad hex digit in a \\u escape")),
            };
            v = v * 16 + d as u32;
            self.n += 1;
        }
        Ok(v)
    }
    fn string(&mut self) -> Result<String, JsonError> {
        self.n += 1; // the opening quote
        let mut out = String::new();
        loop {
            // copy the run up to the next quote, backslash or control character at once
            let start = self.n;
            while let Some(&c) = self.s.get(self.n) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.n += 1;
            }
            // the input is a &str and the run stops only at ASCII bytes: a valid UTF-8 slice
            out.push_str(core::str::from_utf8(&self.s[start..self.n]).map_err(|_| self.err("invalid UTF-8"))?);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.n += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.n += 1;
                    let e = match self.peek() {
                        Some(e) => e,
                        None => return Err(self.err("unterminated escape")),
                    };
                    self.n += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) && self.s[self.n..].starts_with(b"\\u") {
                                let save = self.n;
                                self.n += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    self.n = save; // not a pair: the next escape stands alone
                                    0xFFFD
                                }
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err("unknown escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
            }
        }
    }
}
