//! The wasm glue: the call's input and output, the plugin's config, and the `rauta:host`
//! functions of ABI v1 (`plugins-sdk/ABI.md`). Every import is declared here by hand (no
//! dependencies): `rauta:host` takes pointers into this module's memory; Extism's kernel
//! (`extism:host/env`) works on u64 offsets of host-side blocks, read and written through
//! `load_*`/`store_*`.
//!
//! Compiled for anything but wasm32 (native unit tests of a plugin's logic), the functions are
//! inert stand-ins: no input, output dropped, empty config, logs to stderr with the `std`
//! feature, `now_ms` from the system clock with `std` (else 0), signatures `KeyUnusable`, every
//! `rate_take` allowed, the cache always empty.

use crate::codec::{Decision, Request};
use crate::json::Json;
use alloc::string::String;
use alloc::vec::Vec;

/// Log levels of the `log` host function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Signature algorithms of `verify_signature`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// key = the secret's bytes
    Hs256 = 1,
    /// key = PEM or a JWK JSON object
    Rs256 = 2,
    /// key = PEM or a JWK JSON object; signature = r‖s (64 bytes)
    Es256 = 3,
}

/// What `verify_signature` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Valid,
    Invalid,
    /// the key did not parse, or is not of the algorithm's type
    KeyUnusable,
}

/// What `rate_take` answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Take {
    /// a token was taken; this many whole tokens are left
    Allowed { tokens_left: f64 },
    /// the bucket is empty; the next token comes in this many seconds. The host also answers
    /// `Denied { retry_after_secs: 1.0 }` when `rate_per_second <= 0` or `burst < 1`.
    Denied { retry_after_secs: f64 },
}

impl Take {
    pub fn allowed(&self) -> bool {
        matches!(self, Take::Allowed { .. })
    }
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "rauta:host")]
    extern "C" {
        pub fn input_copy(dst: *mut u8) -> i32;
        pub fn output_set(src: *const u8, len: i32);
        pub fn log(level: i32, ptr: *const u8, len: i32);
        pub fn now_ms() -> f64;
        pub fn verify_signature(
            alg: i32,
            key: *const u8,
            key_len: i32,
            data: *const u8,
            data_len: i32,
            sig: *const u8,
            sig_len: i32,
        ) -> i32;
        pub fn rate_take(key: *const u8, key_len: i32, rate_per_second: f64, burst: f64) -> f64;
        pub fn cache_get(key: *const u8, key_len: i32, dst: *mut u8, cap: i32) -> i32;
        pub fn cache_set(key: *const u8, key_len: i32, val: *const u8, val_len: i32, ttl_ms: f64) -> i32;
    }

    #[link(wasm_import_module = "extism:host/env")]
    extern "C" {
        pub fn input_length() -> u64;
        pub fn alloc(n: u64) -> u64;
        pub fn free(offs: u64);
        pub fn length(offs: u64) -> u64;
        pub fn load_u8(offs: u64) -> u8;
        pub fn load_u64(offs: u64) -> u64;
        pub fn store_u8(offs: u64, v: u8);
        pub fn store_u64(offs: u64, v: u64);
        pub fn config_get(key: u64) -> u64;
        pub fn error_set(offs: u64);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("rauta-plugin assumes a single-threaded module (wasm32 without the atomics feature)");

/// The whole call input: one `input_length` and one `input_copy`.
#[cfg(target_arch = "wasm32")]
pub fn input() -> Vec<u8> {
    unsafe {
        let n = sys::input_length() as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(n);
        let got = sys::input_copy(buf.as_mut_ptr()) as usize;
        // input_copy writes the whole input: more than Extism announced would have overrun the buffer
        if got > n {
            core::arch::wasm32::unreachable()
        }
        buf.set_len(got);
        buf
    }
}

/// Sets the call's output to `decision` (`Continue` leaves it empty: no host call at all).
#[cfg(target_arch = "wasm32")]
pub fn output(decision: &Decision) {
    if let Decision::Continue = decision {
        return;
    }
    let bytes = decision.encode();
    unsafe { sys::output_set(bytes.as_ptr(), bytes.len() as i32) }
}

/// Copies a string into a new Extism block (8 bytes per host call).
#[cfg(target_arch = "wasm32")]
unsafe fn store_block(bytes: &[u8]) -> u64 {
    let offs = sys::alloc(bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = offs;
    for c in &mut chunks {
        sys::store_u64(at, u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        at += 8;
    }
    for b in chunks.remainder() {
        sys::store_u8(at, *b);
        at += 1;
    }
    offs
}

/// Reads a whole Extism block (8 bytes per host call).
#[cfg(target_arch = "wasm32")]
unsafe fn load_block(offs: u64) -> Vec<u8> {
    let len = sys::length(offs) as usize;
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while i + 8 <= len {
        out.extend_from_slice(&sys::load_u64(offs + i as u64).to_le_bytes());
        i += 8;
    }
    while i < len {
        out.push(sys::load_u8(offs + i as u64));
        i += 1;
    }
    out
}

/// The plugin's `spec.config` as JSON text (Extism config key `config`); `""` when the host set
/// none. Asks the host on every call: see [`config`] for the parsed, cached form.
#[cfg(target_arch = "wasm32")]
pub fn config_json() -> String {
    unsafe {
        let key = store_block(b"config");
        let value = sys::config_get(key);
        sys::free(key);
        if value == 0 {
            return String::new();
        }
        let bytes = load_block(value);
        sys::free(value);
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(target_arch = "wasm32")]
struct ConfigCell(core::cell::UnsafeCell<Option<Json>>);
// wasm32 without the atomics feature (checked above) runs one thread: nothing can race
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for ConfigCell {}
#[cfg(target_arch = "wasm32")]
static CONFIG: ConfigCell = ConfigCell(core::cell::UnsafeCell::new(None));

/// The plugin's config, parsed on first use and kept for the instance's life (the proxy makes a
/// new instance when the config changes). `Json::Null` when there is none or it does not parse
/// (logged once at error level; the proxy validates configs, so that means a host bug).
#[cfg(target_arch = "wasm32")]
pub fn config() -> &'static Json {
    unsafe {
        if (*CONFIG.0.get()).is_none() {
            let text = config_json();
            let parsed = if text.is_empty() {
                Json::Null
            } else {
                match Json::parse(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        log(Level::Error, &alloc::format!("rauta-plugin: the config is not JSON: {}", e));
                        Json::Null
                    }
                }
            };
            *CONFIG.0.get() = Some(parsed);
        }
        match &*CONFIG.0.get() {
            Some(v) => v,
            None => core::arch::wasm32::unreachable(),
        }
    }
}

/// Logs through the proxy (structured, with the plugin's name and digest; rate-limited there).
#[cfg(target_arch = "wasm32")]
pub fn log(level: Level, message: &str) {
    unsafe { sys::log(level as i32, message.as_ptr(), message.len() as i32) }
}

/// Wall clock, milliseconds since the epoch.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    unsafe { sys::now_ms() }
}

/// Verifies `sig` over `data` with `key` (see [`Alg`] for the key forms).
#[cfg(target_arch = "wasm32")]
pub fn verify_signature(alg: Alg, key: &[u8], data: &[u8], sig: &[u8]) -> Verification {
    let r = unsafe {
        sys::verify_signature(
            alg as i32,
            key.as_ptr(),
            key.len() as i32,
            data.as_ptr(),
            data.len() as i32,
            sig.as_ptr(),
            sig.len() as i32,
        )
    };
    match r {
        1 => Verification::Valid,
        0 => Verification::Invalid,
        _ => Verification::KeyUnusable,
    }
}

/// Takes one token from the host's bucket `key` (per plugin and worker process).
#[cfg(target_arch = "wasm32")]
pub fn rate_take(key: &str, rate_per_second: f64, burst: f64) -> Take {
    let r = unsafe { sys::rate_take(key.as_ptr(), key.len() as i32, rate_per_second, burst) };
    if r >= 0.0 {
        Take::Allowed { tokens_left: r }
    } else {
        Take::Denied { retry_after_secs: -r }
    }
}

/// The bytes `cache_set` stored under `key` (for this plugin version, in this worker process),
/// or `None` when absent or expired. The host keeps them across calls.
#[cfg(target_arch = "wasm32")]
pub fn cache_get(key: &str) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = alloc::vec![0; 256];
    let mut n = unsafe { sys::cache_get(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), buf.len() as i32) };
    if n < 0 {
        return None;
    }
    if n as usize > buf.len() {
        buf = alloc::vec![0; n as usize];
        n = unsafe { sys::cache_get(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), buf.len() as i32) };
        if n < 0 || n as usize > buf.len() {
            return None;
        }
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Stores `value` under `key` for `ttl_ms`; false when the host refused it (a key over 8 KiB, a
/// value over 64 KiB, a ttl that is not positive).
#[cfg(target_arch = "wasm32")]
pub fn cache_set(key: &str, value: &[u8], ttl_ms: f64) -> bool {
    unsafe { sys::cache_set(key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32, ttl_ms) == 1 }
}

/// Fails the call with `message` (Extism `error_set`): the proxy applies the plugin's
/// failurePolicy and logs the message. Returns the export's non-zero return code.
#[cfg(target_arch = "wasm32")]
pub fn fail(message: &str) -> i32 {
    unsafe { sys::error_set(store_block(message.as_bytes())) }
    1
}

// ---- native stand-ins (see the module docs) ----

#[cfg(not(target_arch = "wasm32"))]
pub fn input() -> Vec<u8> {
    Vec::new()
}
#[cfg(not(target_arch = "wasm32"))]
pub fn output(_decision: &Decision) {}
#[cfg(not(target_arch = "wasm32"))]
pub fn config_json() -> String {
    String::new()
}
#[cfg(not(target_arch = "wasm32"))]
pub fn config() -> &'static Json {
    static NONE: Json = Json::Null;
    &NONE
}
#[cfg(not(target_arch = "wasm32"))]
pub fn log(_level: Level, _message: &str) {
    #[cfg(feature = "std")]
    std::eprintln!("[{:?}] {}", _level, _message);
}
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    #[cfg(feature = "std")]
    {
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            return d.as_secs_f64() * 1000.0;
        }
    }
    0.0
}
#[cfg(not(target_arch = "wasm32"))]
pub fn verify_signature(_alg: Alg, _key: &[u8], _data: &[u8], _sig: &[u8]) -> Verification {
    Verification::KeyUnusable
}
#[cfg(not(target_arch = "wasm32"))]
pub fn rate_take(_key: &str, _rate_per_second: f64, burst: f64) -> Take {
    Take::Allowed { tokens_left: burst - 1.0 }
}
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_get(_key: &str) -> Option<Vec<u8>> {
    None
}
#[cfg(not(target_arch = "wasm32"))]
pub fn cache_set(_key: &str, _value: &[u8], _ttl_ms: f64) -> bool {
    false
}
#[cfg(not(target_arch = "wasm32"))]
pub fn fail(_message: &str) -> i32 {
    1
}

/// What a handler may return: a [`Decision`], or a `Result` whose error fails the call.
pub trait Outcome {
    fn into_decision(self) -> Result<Decision, String>;
}

impl Outcome for Decision {
    fn into_decision(self) -> Result<Decision, String> {
        Ok(self)
    }
}

impl<E: core::fmt::Display> Outcome for Result<Decision, E> {
    fn into_decision(self) -> Result<Decision, String> {
        self.map_err(|e| alloc::format!("{}", e))
    }
}

/// One export's whole call: read and decode the input, run `handler`, set the output. Returns
/// the export's return code (0, or 1 after [`fail`]). The [`on_request!`](crate::on_request)
/// and [`on_response!`](crate::on_response) macros wrap it.
pub fn run<R: Outcome, F: FnOnce(&Request<'_>) -> R>(handler: F) -> i32 {
    #[cfg(all(feature = "std", target_arch = "wasm32"))]
    install_panic_hook();
    let buf = input();
    let req = match Request::decode(&buf) {
        Ok(r) => r,
        Err(e) => return fail(&alloc::format!("rauta-plugin: cannot decode the call input: {}", e)),
    };
    match handler(&req).into_decision() {
        Ok(d) => {
            output(&d);
            0
        }
        Err(message) => fail(&message),
    }
}

/// With std, a panic's message goes to the proxy's log before the module traps.
#[cfg(all(feature = "std", target_arch = "wasm32"))]
fn install_panic_hook() {
    use core::sync::atomic::{AtomicBool, Ordering};
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::Relaxed) {
        return;
    }
    std::panic::set_hook(alloc::boxed::Box::new(|info| {
        log(Level::Error, &alloc::format!("plugin panicked: {}", info));
    }));
}
