//! The two encodings of ABI v1 (`plugins-sdk/ABI.md`): the call input the proxy writes
//! ([`Request::decode`]) and the decision a plugin answers ([`Decision::encode`]). Pure code: it
//! compiles for any target and is tested natively against `plugins-sdk/testdata/vectors.json`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The ABI version this SDK writes into its decisions and accepts in its input.
pub const ABI_VERSION: u8 = 1;
const MAGIC: u8 = 0x52;

/// Which export the proxy called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `on_request`: after routing, before the request goes upstream.
    Request,
    /// `on_response`: the upstream response head arrived.
    Response,
}

/// Ordered `(name, value)` pairs borrowed from the input; a repeated header appears once per value.
pub type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// One call's input, borrowing every string from the input buffer (no copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub phase: Phase,
    pub method: &'a str,
    /// `"http"` or `"https"`
    pub scheme: &'a str,
    /// as the client sent it (Host / :authority)
    pub authority: &'a str,
    /// normalized, without the query
    pub path: &'a str,
    /// without `?`, `""` when absent
    pub query: &'a str,
    /// the client's address, e.g. `127.0.0.1` or `::1`
    pub client: &'a str,
    /// route id `<namespace>/<name>/rule/<index>`
    pub route: &'a str,
    /// the upstream status in the response phase, 0 in the request phase
    pub status: u16,
    /// request headers, names lowercase, in arrival order
    pub headers: Pairs<'a>,
    /// response headers (response phase; empty in the request phase)
    pub response_headers: Pairs<'a>,
    /// the request's metadata map: what earlier plugins set
    pub metadata: Pairs<'a>,
    /// only when the plugin asked for bodies
    pub body: Option<&'a [u8]>,
    /// the body was cut at the plugin's maxBodyBytes
    pub body_truncated: bool,
}

/// Why an input did not decode. The proxy always writes valid input, so seeing one of these
/// means the proxy and the SDK disagree about the ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// the buffer ended at byte `at` while `need` more bytes were expected for `what`
    Truncated {
        at: usize,
        need: usize,
        what: &'static str,
    },
    BadMagic(u8),
    UnsupportedVersion(u8),
    UnknownPhase(u8),
    InvalidUtf8 {
        what: &'static str,
    },
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { at, need, what } => {
                write!(f, "input truncated at byte {}: expected {} more byte(s) for {}", at, need, what)
            }
            DecodeError::BadMagic(b) => {
                write!(f, "input does not start with the RAUTA magic byte 0x52 (got 0x{:02x})", b)
            }
            DecodeError::UnsupportedVersion(v) => {
                write!(f, "input is for ABI version {}; this SDK speaks version {}", v, ABI_VERSION)
            }
            DecodeError::UnknownPhase(p) => write!(f, "unknown phase {}", p),
            DecodeError::InvalidUtf8 { what } => write!(f, "{} is not valid UTF-8", what),
            DecodeError::TrailingBytes(n) => write!(f, "{} unexpected trailing byte(s)", n),
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    n: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, k: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.n < k {
            return Err(DecodeError::Truncated { at: self.n, need: k, what });
        }
        let s = &self.buf[self.n..self.n + k];
        self.n += k;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
    fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes(what)?).map_err(|_| DecodeError::InvalidUtf8 { what })
    }
    fn pairs(&mut self, what: &'static str) -> Result<Pairs<'a>, DecodeError> {
        let count = self.u32(what)? as usize;
        // each pair takes at least 8 bytes: refuse counts the buffer cannot hold before allocating
        if count > (self.buf.len() - self.n) / 8 {
            return Err(DecodeError::Truncated { at: self.n, need: count.saturating_mul(8), what });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.str(what)?;
            let value = self.str(what)?;
            out.push((name, value));
        }
        Ok(out)
    }
}

fn find<'a>(pairs: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

impl<'a> Request<'a> {
    /// Decodes a call input (ABI.md "Input"). Strings borrow from `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Request<'a>, DecodeError> {
        let mut r = Reader { buf, n: 0 };
        let magic = r.u8("magic")?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let version = r.u8("version")?;
        if version != ABI_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let phase = match r.u8("phase")? {
            0 => Phase::Request,
            1 => Phase::Response,
            p => return Err(DecodeError::UnknownPhase(p)),
        };
        let flags = r.u8("flags")?;
        let mut req = Request {
            phase,
            method: r.str("method")?,
            scheme: r.str("scheme")?,
            authority: r.str("authority")?,
            path: r.str("path")?,
            query: r.str("query")?,
            client: r.str("client")?,
            route: r.str("route")?,
            status: r.u16("status")?,
            headers: r.pairs("request headers")?,
            response_headers: r.pairs("response headers")?,
            metadata: r.pairs("metadata")?,
            body: None,
            body_truncated: false,
        };
        if flags & 1 != 0 {
            req.body = Some(r.bytes("body")?);
            req.body_truncated = flags & 2 != 0;
        }
        if r.n != buf.len() {
            return Err(DecodeError::TrailingBytes(buf.len() - r.n));
        }
        Ok(req)
    }

    /// The first value of request header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        find(&self.headers, name)
    }

    /// Every value of request header `name`, in arrival order.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// The first value of response header `name` (response phase).
    pub fn response_header(&self, name: &str) -> Option<&'a str> {
        find(&self.response_headers, name)
    }

    /// Every value of response header `name`, in arrival order (response phase).
    pub fn response_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.response_headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// The metadata value of `key` (exact match; the last one when a key repeats).
    pub fn meta(&self, key: &str) -> Option<&'a str> {
        self.metadata.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// One MODIFY operation (ABI.md "Output"); applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// replaces every value (request phase only)
    SetRequestHeader {
        name: String,
        value: String,
    },
    AddRequestHeader {
        name: String,
        value: String,
    },
    RemoveRequestHeader {
        name: String,
    },
    /// must start with `/`; the proxy normalizes it again
    SetPath(String),
    /// without `?`
    SetQuery(String),
    SetAuthority(String),
    /// in `on_request`: applies to the response this request eventually gets
    SetResponseHeader {
        name: String,
        value: String,
    },
    AddResponseHeader {
        name: String,
        value: String,
    },
    RemoveResponseHeader {
        name: String,
    },
    /// seen by later plugins of this request
    SetMetadata {
        key: String,
        value: String,
    },
}

impl Op {
    /// The op's code in the encoding.
    pub fn code(&self) -> u8 {
        match self {
            Op::SetRequestHeader { .. } => 1,
            Op::AddRequestHeader { .. } => 2,
            Op::RemoveRequestHeader { .. } => 3,
            Op::SetPath(_) => 4,
            Op::SetQuery(_) => 5,
            Op::SetAuthority(_) => 6,
            Op::SetResponseHeader { .. } => 7,
            Op::AddResponseHeader { .. } => 8,
            Op::RemoveResponseHeader { .. } => 9,
            Op::SetMetadata { .. } => 10,
        }
    }
}

/// What a plugin answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go on unchanged. Encoded as the empty output: costs nothing but the call.
    Continue,
    /// Answer the client now; nothing goes upstream (or the upstream response is discarded).
    Reject { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Apply these ops in order.
    Modify(Vec<Op>),
}

impl Decision {
    /// A REJECT with `status` (100..=599; the proxy refuses anything else as a plugin failure).
    pub fn reject(status: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Decision {
        Decision::Reject {
            status,
            headers: headers.iter().map(|(k, v)| (String::from(*k), String::from(*v))).collect(),
            body: Vec::from(body.as_ref()),
        }
    }

    /// Starts a MODIFY: `Decision::modify().set_response_header("x-a", "1").into()`.
    pub fn modify() -> Modify {
        Modify::new()
    }

    /// The decision's bytes, exactly as ABI.md "Output" lays them out (`Continue` is empty).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Decision::Continue => {}
            Decision::Reject { status, headers, body } => {
                let mut size = 3 + 2 + 4 + 4 + body.len();
                for (k, v) in headers {
                    size += 8 + k.len() + v.len();
                }
                w.0.reserve_exact(size);
                w.head(1);
                w.0.extend_from_slice(&status.to_le_bytes());
                w.u32(headers.len());
                for (k, v) in headers {
                    w.str(k);
                    w.str(v);
                }
                w.bytes(body);
            }
            Decision::Modify(ops) => {
                w.0.reserve(7 + ops.len() * 24);
                w.head(2);
                w.u32(ops.len());
                for op in ops {
                    w.0.push(op.code());
                    match op {
                        Op::SetRequestHeader { name, value }
                        | Op::AddRequestHeader { name, value }
                        | Op::SetResponseHeader { name, value }
                        | Op::AddResponseHeader { name, value } => {
                            w.str(name);
                            w.str(value);
                        }
                        Op::RemoveRequestHeader { name } | Op::RemoveResponseHeader { name } => w.str(name),
                        Op::SetPath(s) | Op::SetQuery(s) | Op::SetAuthority(s) => w.str(s),
                        Op::SetMetadata { key, value } => {
                            w.str(key);
                            w.str(value);
                        }
                    }
                }
            }
        }
        w.0
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn head(&mut self, action: u8) {
        self.0.extend_from_slice(&[MAGIC, ABI_VERSION, action]);
    }
    fn u32(&mut self, v: usize) {
        self.0.extend_from_slice(&(v as u32).to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Builds a MODIFY decision, one op per call, in the order they will be applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Modify {
    pub ops: Vec<Op>,
}

impl Modify {
    pub fn new() -> Modify {
        Modify { ops: Vec::new() }
    }
    /// Appends any op.
    pub fn op(mut self, op: Op) -> Modify {
        self.ops.push(op);
        self
    }
    /// Replaces every value of request header `name` (request phase only).
    pub fn set_request_header(self, name: &str, value: &str) -> Modify {
        self.op(Op::SetRequestHeader { name: name.into(), value: value.into() })
    }
    pub fn add_request_header(self, name: &str, value: &str) -> Modify {
        self.op(Op::AddRequestHeader { name: name.into(), value: value.into() })
    }
    pub fn remove_request_header(self, name: &str) -> Modify {
        self.op(Op::RemoveRequestHeader { name: name.into() })
    }
    /// Must start with `/` and hold no space, `?` or `#`.
    pub fn set_path(self, path: &str) -> Modify {
        self.op(Op::SetPath(path.into()))
    }
    /// Without `?`; no space or `#`.
    pub fn set_query(self, query: &str) -> Modify {
        self.op(Op::SetQuery(query.into()))
    }
    pub fn set_authority(self, authority: &str) -> Modify {
        self.op(Op::SetAuthority(authority.into()))
    }
    pub fn set_response_header(self, name: &str, value: &str) -> Modify {
        self.op(Op::SetResponseHeader { name: name.into(), value: value.into() })
    }
    pub fn add_response_header(self, name: &str, value: &str) -> Modify {
        self.op(Op::AddResponseHeader { name: name.into(), value: value.into() })
    }
    pub fn remove_response_header(self, name: &str) -> Modify {
        self.op(Op::RemoveResponseHeader { name: name.into() })
    }
    pub fn set_metadata(self, key: &str, value: &str) -> Modify {
        self.op(Op::SetMetadata { key: key.into(), value: value.into() })
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// The MODIFY decision (kept as MODIFY even with no ops; see [`Modify::or_continue`]).
    pub fn build(self) -> Decision {
        Decision::Modify(self.ops)
    }
    /// `Continue` when no op was added (an empty output), else the MODIFY decision.
    pub fn or_continue(self) -> Decision {
        if self.ops.is_empty() {
            Decision::Continue
        } else {
            Decision::Modify(self.ops)
        }
    }
}

impl From<Modify> for Decision {
    fn from(m: Modify) -> Decision {
        m.build()
    }
}
