// Native tests of the codec and the JSON reader. The ABI vectors are read at run time from
// plugins-sdk/testdata/vectors.json (generated from the proxy's own codec) with this crate's JSON
// reader, so nothing is copied by hand: every input decodes to its fields, every decision encodes
// to its hex. The file: $RAUTA_VECTORS, else ../testdata/vectors.json from the crate directory
// (cargo test's working directory), else plugins-sdk/testdata/vectors.json from the repository.
use crate::*;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::println;

fn vectors() -> Json {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("RAUTA_VECTORS") {
        candidates.push(p);
    }
    candidates.push("../testdata/vectors.json".into());
    candidates.push("plugins-sdk/testdata/vectors.json".into());
    for p in &candidates {
        if let Ok(text) = std::fs::read_to_string(p) {
            return Json::parse(&text).expect("vectors.json parses");
        }
    }
    panic!("vectors.json not found (tried {:?}); set RAUTA_VECTORS", candidates);
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for x in b {
        s.push_str(&std::format!("{:02x}", x));
    }
    s
}

fn pairs(v: &Json) -> Vec<(&str, &str)> {
    v.as_array()
        .expect("pairs array")
        .iter()
        .map(|p| (p.at(0).and_then(Json::as_str).expect("name"), p.at(1).and_then(Json::as_str).expect("value")))
        .collect()
}

fn s<'a>(v: &'a Json, key: &str) -> &'a str {
    v.get(key).and_then(Json::as_str).unwrap_or_else(|| panic!("string field {}", key))
}

#[test]
fn every_input_vector_decodes_to_its_fields() {
    let doc = vectors();
    assert_eq!(doc.get("abiVersion").and_then(Json::as_i64), Some(ABI_VERSION as i64));
    let inputs = doc.get("inputs").and_then(Json::as_array).expect("inputs");
    assert!(inputs.len() >= 6, "expected the six input vectors, got {}", inputs.len());
    for v in inputs {
        let name = s(v, "name");
        let want = v.get("input").expect("input");
        let bytes = unhex(s(v, "hex"));
        let got = Request::decode(&bytes).unwrap_or_else(|e| panic!("{}: {}", name, e));
        let phase = match s(want, "phase") {
            "request" => Phase::Request,
            "response" => Phase::Response,
            p => panic!("{}: phase {}", name, p),
        };
        assert_eq!(got.phase, phase, "{}: phase", name);
        assert_eq!(got.method, s(want, "method"), "{}: method", name);
        assert_eq!(got.scheme, s(want, "scheme"), "{}: scheme", name);
        assert_eq!(got.authority, s(want, "authority"), "{}: authority", name);
        assert_eq!(got.path, s(want, "path"), "{}: path", name);
        assert_eq!(got.query, s(want, "query"), "{}: query", name);
        assert_eq!(got.client, s(want, "client"), "{}: client", name);
        assert_eq!(got.route, s(want, "route"), "{}: route", name);
        assert_eq!(Some(got.status as i64), want.get("status").and_then(Json::as_i64), "{}: status", name);
        assert_eq!(got.headers, pairs(want.get("requestHeaders").unwrap()), "{}: requestHeaders", name);
        assert_eq!(got.response_headers, pairs(want.get("responseHeaders").unwrap()), "{}: responseHeaders", name);
        assert_eq!(got.metadata, pairs(want.get("metadata").unwrap()), "{}: metadata", name);
        let body = want.get("body").and_then(Json::as_str).map(str::as_bytes);
        assert_eq!(got.body, body, "{}: body", name);
        let truncated = want.get("bodyTruncated").and_then(Json::as_bool).unwrap_or(false);
        assert_eq!(got.body_truncated, truncated, "{}: bodyTruncated", name);
        // every header and metadata entry is found by the lookups
        for (k, val) in &got.headers {
            assert!(got.values(k).any(|x| x == *val), "{}: values({})", name, k);
        }
        for (k, _) in &got.response_headers {
            assert!(got.response_header(&k.to_ascii_uppercase()).is_some(), "{}: response_header({})", name, k);
        }
        for (k, _) in &got.metadata {
            assert!(got.meta(k).is_some(), "{}: meta({})", name, k);
        }
    }
    println!("{} input vectors decoded", inputs.len());
}

fn decision_from(v: &Json) -> Decision {
    match s(v, "action") {
        "continue" => Decision::Continue,
        "reject" => {
            let status = v.get("status").and_then(Json::as_i64).expect("status") as u16;
            Decision::reject(status, &pairs(v.get("headers").unwrap()), s(v, "body"))
        }
        "modify" => {
            let mut m = Decision::modify();
            for op in v.get("ops").and_then(Json::as_array).expect("ops") {
                let (name, value, key) = (op.str_or("name", ""), op.str_or("value", ""), op.str_or("key", ""));
                m = match s(op, "op") {
                    "setRequestHeader" => m.set_request_header(name, value),
                    "addRequestHeader" => m.add_request_header(name, value),
                    "removeRequestHeader" => m.remove_request_header(name),
                    "setPath" => m.set_path(s(op, "path")),
                    "setQuery" => m.set_query(s(op, "query")),
                    "setAuthority" => m.set_authority(s(op, "authority")),
                    "setResponseHeader" => m.set_response_header(name, value),
                    "addResponseHeader" => m.add_response_header(name, value),
                    "removeResponseHeader" => m.remove_response_header(name),
                    "setMetadata" => m.set_metadata(key, value),
                    other => panic!("unknown op {} in vectors.json", other),
                };
            }
            m.into()
        }
        other => panic!("unknown action {}", other),
    }
}

#[test]
fn every_decision_vector_encodes_to_its_hex() {
    let doc = vectors();
    let decisions = doc.get("decisions").and_then(Json::as_array).expect("decisions");
    assert!(decisions.len() >= 5, "expected the five decision vectors, got {}", decisions.len());
    let mut codes = Vec::new();
    for v in decisions {
        let name = s(v, "name");
        let d = decision_from(v.get("decision").expect("decision"));
        assert_eq!(hex(&d.encode()), s(v, "hex"), "{}", name);
        if let Decision::Modify(ops) = &d {
            codes.extend(ops.iter().map(Op::code));
        }
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes, (1..=10).collect::<Vec<u8>>(), "the vectors cover every op");
    println!("{} decision vectors encoded", decisions.len());
}

#[test]
fn modify_builders_and_helpers() {
    assert_eq!(Decision::modify().or_continue(), Decision::Continue);
    assert_eq!(Decision::modify().build().encode(), vec![0x52, 1, 2, 0, 0, 0, 0]);
    assert!(Decision::Continue.encode().is_empty());
    let m = Modify::new().op(Op::SetPath("/x".into()));
    assert_eq!(m.clone().or_continue(), Decision::Modify(vec![Op::SetPath("/x".into())]));
    assert!(!m.is_empty());
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let doc = vectors();
    for v in doc.get("inputs").and_then(Json::as_array).unwrap() {
        let bytes = unhex(s(v, "hex"));
        for cut in 0..bytes.len() {
            assert!(Request::decode(&bytes[..cut]).is_err(), "{} cut at {}", s(v, "name"), cut);
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Request::decode(&extra), Err(DecodeError::TrailingBytes(1)));
    }
    let good = unhex(s(doc.get("inputs").unwrap().at(1).unwrap(), "hex"));
    let mut b = good.clone();
    b[0] = 0x53;
    assert_eq!(Request::decode(&b), Err(DecodeError::BadMagic(0x53)));
    let mut b = good.clone();
    b[1] = 2;
    assert_eq!(Request::decode(&b), Err(DecodeError::UnsupportedVersion(2)));
    let mut b = good.clone();
    b[2] = 7;
    assert_eq!(Request::decode(&b), Err(DecodeError::UnknownPhase(7)));
    // method "GET" → invalid UTF-8 in its first byte
    let mut b = good.clone();
    b[8] = 0xff;
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidUtf8 { what: "method" }));
    // a header count the buffer cannot hold is refused before allocating
    let mut b: Vec<u8> = vec![0x52, 1, 0, 0];
    for _ in 0..7 {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Request::decode(&b), Err(DecodeError::Truncated { what: "request headers", .. })));
    let msg = std::format!("{}", Request::decode(&[0x52]).unwrap_err());
    assert!(msg.contains("version"), "{}", msg);
}

#[test]
fn header_lookups() {
    let doc = vectors();
    let v = doc.get("inputs").and_then(Json::as_array).unwrap().iter().find(|v| s(v, "name") == "response").unwrap();
    let bytes = unhex(s(v, "hex"));
    let r = Request::decode(&bytes).unwrap();
    assert_eq!(r.header("Accept"), Some("application/json"));
    assert_eq!(r.header("x-multi"), Some("a"));
    assert_eq!(r.values("X-Multi").collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(r.values("absent").count(), 0);
    assert_eq!(r.response_values("set-cookie").collect::<Vec<_>>(), vec!["a=1", "b=2"]);
    assert_eq!(r.response_header("content-type"), Some("text/plain"));
    assert_eq!(r.meta("k"), Some("v"));
    assert_eq!(r.meta("K"), None);
    assert_eq!(r.status, 503);
}

#[test]
fn json_reader() {
    let j = Json::parse(
        r#" {"a": "x\"y\\z\/\n\t\u00e9\ud83d\ude00", "n": -1.5e2, "h": 0.5, "i": 42, "t": true, "f": false, "z": null,
            "arr": [1, [], {}], "o": {"k": "v"}, "dup": 1, "dup": 2, "u": "日本"} "#,
    )
    .unwrap();
    assert_eq!(j.get("a").and_then(Json::as_str), Some("x\"y\\z/\n\té\u{1F600}"));
    assert_eq!(j.get("n").and_then(Json::as_f64), Some(-150.0));
    assert_eq!(j.get("i").and_then(Json::as_i64), Some(42));
    assert_eq!(j.get("n").and_then(Json::as_i64), Some(-150));
    assert_eq!(j.get("h").and_then(Json::as_i64), None);
    assert_eq!(j.get("t").and_then(Json::as_bool), Some(true));
    assert_eq!(j.get("f").and_then(Json::as_bool), Some(false));
    assert!(j.get("z").unwrap().is_null());
    assert_eq!(j.get("arr").and_then(Json::as_array).map(<[Json]>::len), Some(3));
    assert_eq!(j.path(&["o", "k"]).as_str(), Some("v"));
    assert!(j.path(&["o", "missing", "deeper"]).is_null());
    assert_eq!(j.get("dup").and_then(Json::as_i64), Some(1), "the first of a repeated key");
    assert_eq!(j.str_or("u", ""), "日本");
    assert_eq!(j.str_or("missing", "dflt"), "dflt");
    assert_eq!(Json::parse(r#""\ud800x""#).unwrap(), Json::String("\u{FFFD}x".into()));
    assert_eq!(Json::parse(r#""\ud800\u0041""#).unwrap(), Json::String("\u{FFFD}A".into()));
    assert_eq!(Json::parse("0").unwrap(), Json::Number(0.0));
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\":}",
        "01",
        "1.",
        "-",
        "1e",
        "tru",
        "\"abc",
        "\"\\x\"",
        "\"\u{1}\"",
        "{} x",
        "{1:2}",
        "[1 2]",
        "\"\\u12\"",
        "nul",
    ] {
        assert!(Json::parse(bad).is_err(), "{:?} should not parse", bad);
    }
    let deep = "[".repeat(json::MAX_DEPTH + 1) + &"]".repeat(json::MAX_DEPTH + 1);
    assert_eq!(Json::parse(&deep).unwrap_err().what, "nested too deeply");
    let ok = "[".repeat(json::MAX_DEPTH) + &"]".repeat(json::MAX_DEPTH);
    assert!(Json::parse(&ok).is_ok());
}

#[test]
fn run_with_no_input_fails_cleanly() {
    // natively input() is empty: the call fails (return code 1) instead of panicking
    assert_eq!(run(|_: &Request| Decision::Continue), 1);
}
