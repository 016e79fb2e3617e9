//! hostcheck exercises every call of the Rust SDK through the proxy's sandbox; the SDK's test
//! (test/unit/plugins/sdk-rust.spec.ts) drives it. Both phases answer a REJECT 200 whose JSON body
//! echoes the decoded input in the shape of plugins-sdk/testdata/vectors.json, the clock, the
//! config as the SDK's JSON reader parsed it (written back as JSON), plus the results of the host
//! calls that request headers ask for:
//!
//! ```text
//! x-hostcheck-log:    "<level>:<message>"                    log
//! x-hostcheck-verify: "<alg>:<key hex>:<data hex>:<sig hex>"  verify_signature
//! x-hostcheck-rate:   "<key>:<rate>:<burst>"                 rate_take
//! x-hostcheck-cache:  "set:<key>:<value>:<ttlMs>" | "get:<key>"  cache_set / cache_get
//! x-hostcheck-fail:   "error" | "panic"                      a failing call
//! x-hostcheck-modify: any                                    answer a MODIFY of every op instead
//! ```
use rauta_plugin::{
    cache_get, cache_set, config, config_json, log, now_ms, rate_take, verify_signature, Alg, Decision, Json, Level, Phase, Request, Take,
    Verification,
};
use std::fmt::Write;

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_pairs(out: &mut String, pairs: &[(&str, &str)]) {
    out.push('[');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        json_str(out, k);
        out.push(',');
        json_str(out, v);
        out.push(']');
    }
    out.push(']');
}

/// The parsed config written back as JSON: what the SDK's reader understood.
fn json_value(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            let _ = write!(out, "{}", n);
        }
        Json::String(s) => json_str(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, k);
                out.push(':');
                json_value(out, item);
            }
            out.push('}');
        }
    }
}

fn echo(out: &mut String, req: &Request) {
    out.push_str("{\"phase\":");
    json_str(out, if req.phase == Phase::Request { "request" } else { "response" });
    for (k, v) in [
        ("method", req.method),
        ("scheme", req.scheme),
        ("authority", req.authority),
        ("path", req.path),
        ("query", req.query),
        ("client", req.client),
        ("route", req.route),
    ] {
        let _ = write!(out, ",\"{}\":", k);
        json_str(out, v);
    }
    let _ = write!(out, ",\"status\":{}", req.status);
    out.push_str(",\"requestHeaders\":");
    json_pairs(out, &req.headers);
    out.push_str(",\"responseHeaders\":");
    json_pairs(out, &req.response_headers);
    out.push_str(",\"metadata\":");
    json_pairs(out, &req.metadata);
    if let Some(body) = req.body {
        out.push_str(",\"body\":");
        json_str(out, &String::from_utf8_lossy(body));
    }
    if req.body_truncated {
        out.push_str(",\"bodyTruncated\":true");
    }
    out.push('}');
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(format!("bad hex {:?}", s));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex {:?}: {}", s, e)))
        .collect()
}

fn fields(v: &str, n: usize) -> Result<Vec<&str>, String> {
    let f: Vec<&str> = v.splitn(n, ':').collect();
    if f.len() != n {
        return Err(format!("want {} ':'-separated fields in {:?}", n, v));
    }
    Ok(f)
}

fn num(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|e| format!("bad number {:?}: {}", s, e))
}

fn every_op(req: &Request) -> Decision {
    let mut m = Decision::modify();
    if req.phase == Phase::Request {
        m = m
            .set_request_header("x-method", req.method)
            .add_request_header("x-client", req.client)
            .remove_request_header("x-hostcheck-modify")
            .set_path(&format!("/echo{}", req.path))
            .set_query(&format!("q={}", req.query))
            .set_authority("upstream.internal:8080");
    }
    m.set_response_header("x-route", req.route)
        .add_response_header("x-status", &req.status.to_string())
        .remove_response_header("server")
        .set_metadata("hostcheck.path", req.path)
        .into()
}

fn handle(req: &Request) -> Result<Decision, String> {
    match req.header("x-hostcheck-fail") {
        Some("error") => return Err("hostcheck failed as asked".into()),
        Some("panic") => panic!("hostcheck panicked as asked"),
        _ => {}
    }
    if req.header("x-hostcheck-modify").is_some() {
        return Ok(every_op(req));
    }
    if let Some(v) = req.header("x-hostcheck-log") {
        let f = fields(v, 2)?;
        let level = match f[0] {
            "0" => Level::Debug,
            "1" => Level::Info,
            "2" => Level::Warn,
            "3" => Level::Error,
            other => return Err(format!("bad level {:?}", other)),
        };
        log(level, f[1]);
    }
    let mut out = String::with_capacity(512);
    out.push_str("{\"input\":");
    echo(&mut out, req);
    let _ = write!(out, ",\"nowMs\":{}", now_ms());
    out.push_str(",\"config\":");
    let raw = config_json();
    if raw.is_empty() {
        out.push_str("null");
    } else if config().is_null() && raw.trim() != "null" {
        return Err(format!("the SDK could not parse the config {:?}", raw));
    } else {
        json_value(&mut out, config());
    }
    if let Some(v) = req.header("x-hostcheck-verify") {
        let f = fields(v, 4)?;
        let alg = match f[0] {
            "1" => Alg::Hs256,
            "2" => Alg::Rs256,
            "3" => Alg::Es256,
            other => return Err(format!("bad alg {:?}", other)),
        };
        let r = verify_signature(alg, &unhex(f[1])?, &unhex(f[2])?, &unhex(f[3])?);
        out.push_str(match r {
            Verification::Valid => ",\"verify\":{\"valid\":true}",
            Verification::Invalid => ",\"verify\":{\"valid\":false}",
            Verification::KeyUnusable => ",\"verify\":{\"valid\":false,\"error\":\"key unusable\"}",
        });
    }
    if let Some(v) = req.header("x-hostcheck-rate") {
        let f = fields(v, 3)?;
        let (allowed, remaining, retry) = match rate_take(f[0], num(f[1])?, num(f[2])?) {
            Take::Allowed { tokens_left } => (true, tokens_left, 0.0),
            Take::Denied { retry_after_secs } => (false, 0.0, retry_after_secs),
        };
        let _ =
            write!(out, ",\"rate\":{{\"allowed\":{},\"remaining\":{},\"retryAfter\":{}}}", allowed, remaining, retry);
    }
    if let Some(v) = req.header("x-hostcheck-cache") {
        if let Some(key) = v.strip_prefix("get:") {
            match cache_get(key) {
                Some(value) => {
                    let text = String::from_utf8(value).map_err(|_| String::from("cached value is not UTF-8"))?;
                    out.push_str(",\"cache\":{\"found\":true,\"value\":");
                    json_str(&mut out, &text);
                    out.push('}');
                }
                None => out.push_str(",\"cache\":{}"),
            }
        } else if let Some(rest) = v.strip_prefix("set:") {
            let f = fields(rest, 3)?;
            if cache_set(f[0], f[1].as_bytes(), num(f[2])?) {
                out.push_str(",\"cache\":{\"stored\":true}");
            } else {
                out.push_str(",\"cache\":{}");
            }
        } else {
            return Err(format!("bad x-hostcheck-cache {:?}", v));
        }
    }
    out.push('}');
    Ok(Decision::reject(200, &[("content-type", "application/json")], out))
}

rauta_plugin::on_request!(handle);
rauta_plugin::on_response!(handle);
