//! A template RAUTA plugin: copy this directory to start one.
//!
//! `on_request` rejects one path with 403 and, for every other request, adds a response header.
//! Its config (the RautaPlugin's `spec.config`), every key optional:
//!
//! ```json
//! { "header": "x-rauta-plugin", "value": "rust-template", "blockPath": "/blocked" }
//! ```
//!
//! `blockPath` matches the path itself and everything under it (`/blocked`, `/blocked/x`; not
//! `/blockedx`).
use rauta_plugin::{config, log, Decision, Level, Request};

fn blocked(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

fn on_request(req: &Request) -> Decision {
    let cfg = config();
    let block = cfg.str_or("blockPath", "/blocked");
    if !block.is_empty() && blocked(req.path, block) {
        log(Level::Info, &format!("rejecting {} {} from {}", req.method, req.path, req.client));
        return Decision::reject(
            403,
            &[("content-type", "text/plain; charset=utf-8")],
            "blocked by the rust template\n",
        );
    }
    Decision::modify()
        .set_response_header(cfg.str_or("header", "x-rauta-plugin"), cfg.str_or("value", "rust-template"))
        .into()
}

rauta_plugin::on_request!(on_request);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn block_prefix() {
        assert!(blocked("/blocked", "/blocked"));
        assert!(blocked("/blocked/x", "/blocked"));
        assert!(!blocked("/blockedx", "/blocked"));
        assert!(blocked("/a/b", "/a/"));
        assert!(!blocked("/other", "/blocked"));
    }
}
