//! # rauta-plugin: write RAUTA proxy plugins in Rust
//!
//! A RAUTA plugin is a WebAssembly module that exports `on_request` and/or `on_response`
//! (ABI v1, `plugins-sdk/ABI.md`). This crate has no dependencies: the codec of the ABI's two
//! encodings ([`Request`], [`Decision`]), a small JSON reader for the config ([`Json`]), and the
//! host functions, declared by hand.
//!
//! ```ignore
//! use rauta_plugin::{config, Decision, Request};
//!
//! fn on_request(req: &Request) -> Decision {
//!     if req.path == "/blocked" {
//!         return Decision::reject(403, &[("content-type", "text/plain")], "blocked\n");
//!     }
//!     Decision::modify().set_response_header("x-served-by", config().str_or("name", "rauta")).into()
//! }
//! rauta_plugin::on_request!(on_request);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-unknown-unknown` with `-C panic=abort` (see
//! `plugins-sdk/rust/README.md`). The crate itself is `no_std` + `alloc`; the `std` feature (on by
//! default) sends panic messages to the proxy's log. A `no_std` plugin brings its own
//! `#[global_allocator]` and `#[panic_handler]` (and, before Rust 1.68, an alloc error handler,
//! which needs nightly).
#![no_std]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod codec;
mod host;
pub mod json;

pub use codec::{Decision, DecodeError, Modify, Op, Pairs, Phase, Request, ABI_VERSION};
pub use host::{
    cache_get, cache_set, config, config_json, fail, input, log, now_ms, output, rate_take, run, verify_signature, Alg, Level, Outcome, Take,
    Verification,
};
pub use json::{Json, JsonError};

/// Exports `on_request` running `handler: fn(&Request) -> Decision` (or `-> Result<Decision, E>`
/// with `E: Display`; an `Err` fails the call with its message).
#[macro_export]
macro_rules! on_request {
    ($handler:expr) => {
        #[export_name = "on_request"]
        pub extern "C" fn __rauta_plugin_on_request() -> i32 {
            $crate::run($handler)
        }
    };
}

/// Exports `on_response` running `handler` (see [`on_request!`]). Request ops (1–6) are a
/// plugin failure in this phase.
#[macro_export]
macro_rules! on_response {
    ($handler:expr) => {
        #[export_name = "on_response"]
        pub extern "C" fn __rauta_plugin_on_response() -> i32 {
            $crate::run($handler)
        }
    };
}

#[cfg(test)]
mod tests;
