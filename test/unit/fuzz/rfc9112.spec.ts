// The MUSTs (and the SHOULDs a gateway is judged by) of RFC 9112 §2–§7 and RFC 9110 §5–§7 that
// bind a server or an intermediary, one test each, as raw bytes on a socket to a real Proxy.
// Each title starts with the section it checks; docs/reliability.md has the table. Where the RFC
// lets a recipient either refuse or repair, the test accepts either, as long as nothing
// ambiguous reaches a backend.
import { expect } from "chai";
import http2 from "node:http2";
import tls from "node:tls";
import { talk, header } from "../../helpers/fuzz/http1-wire.ts";
import type { TalkResult, WireResponse } from "../../helpers/fuzz/http1-wire.ts";
import { startTarget } from "../../helpers/fuzz/target.ts";
import type { Target, Recorded } from "../../helpers/fuzz/target.ts";

const CRLF = "\r\n";
/** a request: the lines of its head, then the body */
const msg = (head: string[], body = "") => head.join(CRLF) + CRLF + CRLF + body;

const statuses = (r: TalkResult) => r.responses.map(x => x.status);
const only = (r: TalkResult): WireResponse => {
  expect(r.error, r.raw.toString("latin1")).to.equal(null);
  expect(r.responses, r.raw.toString("latin1")).to.have.length(1);
  return r.responses[0]!;
};
const field = (rec: Recorded, name: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2)
    if (rec.rawHeaders[i]!.toLowerCase() === name) out.push(rec.rawHeaders[i + 1]!);
  return out;
};

describe("RFC 9112 / RFC 9110 request handling (raw sockets, one MUST per test)", function () {
  this.timeout(10_000);
  let t: Target;

  before(async () => {
    t = await startTarget();
  });
  after(async () => {
    await t.close();
  });
  beforeEach(() => {
    t.main.requests.length = 0;
    t.a.requests.length = 0;
    t.raw.heads.length = 0;
  });

  /** one request on its own connection; resolves at its response (or the close) */
  const one = (data: string, methods?: string[]) =>
    talk(t.port, data, { expect: 1, methods, timeoutMs: 3000 });
  /** refused: a 4xx (or the given status), nothing reached a backend */
  async function refused(data: string, status?: number) {
    const r = await one(data);
    const res = only(r);
    if (status === undefined) expect(res.status, r.raw.toString("latin1")).to.be.within(400, 499);
    else expect(res.status, r.raw.toString("latin1")).to.equal(status);
    await t.settle();
    expect(t.main.requests.length + t.a.requests.length, "forwarded").to.equal(0);
    return r;
  }
  /** served: 200 from the main backend, which received exactly one request */
  async function served(data: string): Promise<Recorded> {
    const r = await one(data);
    expect(only(r).status, r.raw.toString("latin1")).to.equal(200);
    expect(t.main.requests).to.have.length(1);
    return t.main.requests[0]!;
  }
  /** sent through the raw backend, which answers `reply`: what the client gets */
  async function viaRaw(reply: string, method = "GET") {
    t.raw.reply = reply;
    return talk(t.port, msg([`${method} /r HTTP/1.1`, "Host: raw.test"]), {
      expect: 1,
      methods: [method],
      timeoutMs: 3000,
    });
  }

  describe("RFC 9112 §2: message format", () => {
    it("RFC 9112 §2.2: a bare CR in a field value is refused with 400 (never passed on)", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: a\rb"]), 400);
    });

    it("RFC 9112 §2.2: a bare CR in the request-line is refused with 400", async () => {
      await refused(msg(["GET /a\rb HTTP/1.1", "Host: x"]), 400);
    });

    it("RFC 9112 §2.2: whitespace between the start-line and the first field line is refused with 400", async () => {
      const r = await refused(msg(["GET / HTTP/1.1", " Host: x", "Host: x"]), 400);
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §2.2: empty lines (CRLF) before a request-line are ignored (SHOULD)", async () => {
      await served(`${CRLF}${CRLF}${msg(["GET /after-empty-lines HTTP/1.1", "Host: x"])}`);
    });

    it("RFC 9112 §2.2: a bare LF as line terminator is refused with 400 (MAY accept; RAUTA does not)", async () => {
      await refused("GET / HTTP/1.1\nHost: x\n\n", 400);
    });

    it("RFC 9112 §2.2: octets that are not HTTP get 400 and the connection is closed (SHOULD)", async () => {
      const r = await refused("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400);
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §2.3: HTTP-version is case-sensitive: 'http/1.1' is refused with 400", async () => {
      await refused(msg(["GET / http/1.1", "Host: x"]), 400);
    });

    it("RFC 9112 §2.3: a request-line of another major version is answered 505", async () => {
      await refused(msg(["GET / HTTP/2.0", "Host: x"]), 505);
    });

    it("RFC 9112 §2.3: a higher minor version (HTTP/1.2) is refused or served as HTTP/1.1, never mis-framed", async () => {
      const r = await one(msg(["POST / HTTP/1.2", "Host: x", "Content-Length: 3"], "abc"));
      const res = only(r);
      if (res.status === 200) expect(t.main.requests[0]!.body.toString()).to.equal("abc");
      else {
        expect(res.status).to.be.within(400, 505);
        expect(t.main.requests).to.have.length(0);
      }
    });
  });

  describe("RFC 9112 §3: request line and target", () => {
    it("RFC 9112 §3: a request-target longer than the limit is answered 414", async () => {
      const r = await refused(msg([`GET /${"a".repeat(9000)} HTTP/1.1`, "Host: x"]), 414);
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §3: a long request-line within the limit is served (the limit is the header size)", async () => {
      const rec = await served(msg([`GET /${"a".repeat(4000)} HTTP/1.1`, "Host: x"]));
      expect(rec.url).to.have.length(4001);
    });

    it("RFC 9112 §3: a header section over the limit is still 431, not 414", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", `X-Big: ${"b".repeat(9000)}`]), 431);
    });

    it("RFC 9112 §3: an unrecognized method is refused, never forwarded (SHOULD 501; llhttp answers 400)", async () => {
      await refused(msg(["BREW /pot HTTP/1.1", "Host: x"]));
    });

    it("RFC 9112 §3.2: an HTTP/1.1 request without Host is refused with 400", async () => {
      await refused(msg(["GET / HTTP/1.1"]), 400);
    });

    it("RFC 9112 §3.2: a request with more than one Host is refused with 400", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: a.example", "Host: b.example"]), 400);
      await refused(msg(["GET / HTTP/1.1", "Host: x", "host: x"]), 400);
    });

    it("RFC 9112 §3.2: a Host with an invalid value (userinfo, spaces, a list, a path, bad brackets) is refused with 400", async () => {
      for (const v of ["user@x", "a b", "x, y", "x/y", "[::1", "x:8o", "ex%zzample", "x\\y"])
        await refused(msg(["GET / HTTP/1.1", `Host: ${v}`]), 400);
    });

    it("RFC 9112 §3.2: valid Host forms are served: name, port, IPv4, IPv6 literal, empty", async () => {
      for (const v of ["x", "x:8080", "127.0.0.1:1", "[::1]:80", "a-b.c_d~e"]) {
        t.main.requests.length = 0;
        const rec = await served(msg(["GET / HTTP/1.1", `Host: ${v}`]));
        expect(field(rec, "host")).to.deep.equal([v]);
      }
      t.main.requests.length = 0;
      await served(msg(["GET / HTTP/1.1", "Host:"]));
    });

    it("RFC 9112 §3.2: over TLS too (HTTP/1.1 by ALPN): without Host, or with two, 400", async () => {
      const tt = await startTarget({ tls: true });
      try {
        for (const head of [
          ["GET / HTTP/1.1"],
          ["GET / HTTP/1.1", "Host: a.example", "Host: b.example"],
        ]) {
          const status = await new Promise<number>((resolve, reject) => {
            const s = tls.connect({
              host: "127.0.0.1",
              port: tt.tlsPort,
              servername: "a.example",
              rejectUnauthorized: false,
              ALPNProtocols: ["http/1.1"],
            });
            let buf = "";
            s.on("secureConnect", () => s.write(msg([...head, "Connection: close"])));
            s.on("data", (d: Buffer) => (buf += d.toString("latin1")));
            s.on("error", reject);
            s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0)));
          });
          expect(status, head.join(" | ")).to.equal(400);
        }
        expect(tt.a.requests.length + tt.main.requests.length).to.equal(0);
      } finally {
        await tt.close();
      }
    });

    it("RFC 9112 §3.2: an HTTP/1.0 request without Host is served (Host is required from HTTP/1.1)", async () => {
      const r = await talk(t.port, msg(["GET /ten HTTP/1.0"]), { timeoutMs: 3000 });
      expect(statuses(r)).to.deep.equal([200]);
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §3.2.2: absolute-form: the target's authority is routed and forwarded, the Host header ignored", async () => {
      const r = await one(msg(["GET http://a.example/p?q=1 HTTP/1.1", "Host: other.example"]));
      expect(only(r).status).to.equal(200);
      expect(t.main.requests).to.have.length(0);
      expect(t.a.requests).to.have.length(1);
      expect(t.a.requests[0]!.url).to.equal("/p?q=1");
      expect(field(t.a.requests[0]!, "host")).to.deep.equal(["a.example"]);
      expect(field(t.a.requests[0]!, "x-forwarded-host")).to.deep.equal(["a.example"]);
    });

    it("RFC 9112 §3.2.2: absolute-form scheme is case-insensitive and an empty path is '/'", async () => {
      const r = await one(msg(["GET HTTP://A.EXAMPLE:80 HTTP/1.1", "Host: a.example"]));
      expect(only(r).status).to.equal(200);
      expect(t.a.requests[0]!.url).to.equal("/");
    });

    it("RFC 9110 §4.2.1/§4.2.4: absolute-form with an empty host or with userinfo is refused with 400", async () => {
      for (const target of [
        "http:///p",
        "http://:80/p",
        "http://user@a.example/p",
        "http://u:pw@a.example/",
      ])
        await refused(msg([`GET ${target} HTTP/1.1`, "Host: a.example"]), 400);
    });

    it("RFC 9112 §3.2.2: absolute-form with a scheme other than http(s) is refused with 400", async () => {
      await refused(msg(["GET ftp://a.example/f HTTP/1.1", "Host: a.example"]), 400);
    });

    it("RFC 9112 §3.2: an HTTP/1.1 absolute-form request without Host is still refused with 400", async () => {
      await refused(msg(["GET http://a.example/ HTTP/1.1"]), 400);
    });

    it("RFC 9112 §3.2.3: authority-form outside CONNECT is refused with 400", async () => {
      await refused(msg(["GET a.example:443 HTTP/1.1", "Host: a.example"]), 400);
    });

    it("RFC 9112 §3.2.3: CONNECT is answered 501 (RAUTA is not a forward proxy) instead of a dropped connection", async () => {
      const r = await refused(msg(["CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"]), 501);
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §3.2.3: CONNECT over HTTP/2 is answered 501 as well", async () => {
      const session = http2.connect(`http://127.0.0.1:${t.port}`);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request({ ":method": "CONNECT", ":authority": "a.example:443" });
          req.on("response", h => resolve(Number(h[":status"])));
          req.on("error", reject);
        });
        expect(status).to.equal(501);
      } finally {
        session.destroy();
      }
    });

    it("RFC 9112 §3.2.4: asterisk-form outside OPTIONS is refused with 400", async () => {
      await refused(msg(["GET * HTTP/1.1", "Host: x"]), 400);
    });

    it("RFC 9112 §3.2.4: OPTIONS * is answered by the gateway itself", async () => {
      const r = await one(msg(["OPTIONS * HTTP/1.1", "Host: x"]));
      expect(only(r).status).to.equal(200);
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9112 §3.2: a request-target with a fragment is refused with 400 (a backend would cut it)", async () => {
      await refused(msg(["GET /secret#/../public HTTP/1.1", "Host: x"]), 400);
      await refused(msg(["GET /a?b#c HTTP/1.1", "Host: x"]), 400);
    });
  });

  describe("RFC 9112 §5 / RFC 9110 §5: field syntax", () => {
    it("RFC 9112 §5.1: whitespace between a field name and the colon is refused with 400", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A : 1"]), 400);
      await refused(msg(["GET / HTTP/1.1", "Host\t: x"]), 400);
    });

    it("RFC 9112 §5.1: a response field with whitespace before the colon is not forwarded as such (502)", async () => {
      const r = await viaRaw("HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok");
      const res = only(r);
      if (res.status === 200) expect(res.headers.map(([k]) => k)).to.not.include("X-A ");
      else expect(res.status).to.equal(502);
    });

    it("RFC 9112 §5.2: obs-fold in a request is refused with 400", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: 1", " continued"]), 400);
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: 1", "\tcontinued"]), 400);
    });

    it("RFC 9112 §5.2: obs-fold in a response is answered 502 (or unfolded), never relayed", async () => {
      const r = await viaRaw("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok");
      const res = only(r);
      if (res.status === 200) expect(header(res, "x-a")).to.not.match(/[\r\n]/);
      else expect(res.status).to.equal(502);
    });

    it("RFC 9110 §5.1: a field name that is not a token is refused with 400", async () => {
      for (const name of ["X(Y)", "X Y", "@", "", "X\x7fY", "Ä"])
        await refused(msg(["GET / HTTP/1.1", "Host: x", `${name}: v`]), 400);
    });

    it("RFC 9110 §5.2: unrecognized header fields are forwarded", async () => {
      const rec = await served(msg(["GET / HTTP/1.1", "Host: x", "X-Unknown-Field: yes"]));
      expect(field(rec, "x-unknown-field")).to.deep.equal(["yes"]);
    });

    it("RFC 9110 §5.3: the order of field lines with the same name is kept", async () => {
      const rec = await served(
        msg(["GET / HTTP/1.1", "Host: x", "X-L: 1", "X-M: m", "X-L: 2", "X-L: 3"]),
      );
      expect(field(rec, "x-l")).to.deep.equal(["1", "2", "3"]);
    });

    it("RFC 9110 §5.4: a header section larger than the limit is answered 431", async () => {
      const r = await refused(
        msg(["GET / HTTP/1.1", "Host: x", `X-Big: ${"a".repeat(9000)}`]),
        431,
      );
      expect(r.closed).to.equal(true);
    });

    it("RFC 9110 §5.4: more header fields than the limit are answered 431", async () => {
      const many = Array.from({ length: 120 }, (_, i) => `X-H${i}: v`);
      await refused(msg(["GET / HTTP/1.1", "Host: x", ...many]), 431);
    });

    it("RFC 9110 §5.5: CR, LF or NUL in a field value are refused with 400", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: a\0b"]), 400);
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: a\rb"]), 400);
      await refused("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n", 400);
    });

    // pending: nghttp2 (below Node's http2 API) drops such a field and passes the request on, so
    // RAUTA never sees it; the request is neither refused nor repaired. The field itself never
    // reaches a backend (the HTTP/2 fuzzer checks that on every case).
    it.skip("RFC 9110 §5.5 over HTTP/2: a field value with CR, LF or NUL makes the request malformed (pending: nghttp2 drops the field before RAUTA sees the request)", async () => {
      const session = http2.connect(`http://127.0.0.1:${t.port}`);
      try {
        const status = await new Promise<number>(resolve => {
          const req = session.request({ ":path": "/", "x-a": "ok" });
          // node:http2 refuses to send CR/LF itself: the raw frame is in test/helpers/fuzz/h2-grammar.ts
          req.on("response", h => resolve(Number(h[":status"])));
          req.on("error", () => resolve(0));
          req.end();
        });
        expect(status).to.equal(400);
      } finally {
        session.destroy();
      }
    });

    it("RFC 9110 §5.5: other control characters in a field value are refused (MAY retain; RAUTA refuses)", async () => {
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: a\x01b"]), 400);
      await refused(msg(["GET / HTTP/1.1", "Host: x", "X-A: a\x7fb"]), 400);
    });

    it("RFC 9110 §5.5: leading and trailing whitespace is not part of a field value", async () => {
      const rec = await served(msg(["GET / HTTP/1.1", "Host: x", "X-A: \t padded \t "]));
      expect(field(rec, "x-a")).to.deep.equal(["padded"]);
    });

    it("RFC 9110 §5.5: obs-text (octets 0x80-0xFF) in a field value passes through as opaque octets", async () => {
      const rec = await served(msg(["GET / HTTP/1.1", "Host: x", "X-A: caf\xe9"]));
      expect(Buffer.from(field(rec, "x-a")[0]!, "latin1")).to.deep.equal(
        Buffer.from("caf\xe9", "latin1"),
      );
    });

    it("RFC 9110 §5.6.1: empty list elements are ignored (Connection: , , close still closes)", async () => {
      const r = await talk(
        t.port,
        msg(["GET / HTTP/1.1", "Host: x", "Connection: , , close"]) +
          msg(["GET /second HTTP/1.1", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([200]);
      expect(r.closed).to.equal(true);
      expect(t.main.requests.map(x => x.url)).to.deep.equal(["/"]);
    });
  });

  describe("RFC 9112 §6–§7: message body framing", () => {
    it("RFC 9112 §6.1: a transfer coding other than chunked ('gzip, chunked') is answered 501 and the connection closed", async () => {
      const r = await refused(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: gzip, chunked"],
          "3\r\nabc\r\n0\r\n\r\n",
        ),
        501,
      );
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request makes the framing faulty: 400, closed, nothing after it processed", async () => {
      const r = await talk(
        t.port,
        msg(
          ["POST / HTTP/1.0", "Host: x", "Connection: keep-alive", "Transfer-Encoding: chunked"],
          "3\r\nabc\r\n0\r\n\r\n",
        ) + msg(["GET /smuggled HTTP/1.0", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([400]);
      expect(r.closed).to.equal(true);
      await t.settle();
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9112 §6.1: a response to an HTTP/1.0 request is never chunked", async () => {
      t.raw.reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
      const r = await talk(t.port, msg(["GET /r HTTP/1.0", "Host: raw.test"]), { timeoutMs: 3000 });
      const res = only(r);
      expect(res.status).to.equal(200);
      expect(header(res, "transfer-encoding")).to.equal(undefined);
      expect(res.body.toString()).to.equal("ok");
    });

    it("RFC 9112 §6.1 / RFC 9110 §8.6: a 204 response carries neither Transfer-Encoding nor content", async () => {
      const r = await viaRaw("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n");
      const res = only(r);
      expect(res.status).to.equal(204);
      expect(header(res, "transfer-encoding")).to.equal(undefined);
      expect(r.rest.length).to.equal(0);
    });

    it("RFC 9112 §6.2 / §6.3: Content-Length together with Transfer-Encoding is refused with 400 and the connection closed", async () => {
      const r = await refused(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Content-Length: 6", "Transfer-Encoding: chunked"],
          "0\r\n\r\n",
        ) + msg(["GET /smuggled HTTP/1.1", "Host: x"]),
        400,
      );
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §6.3: Transfer-Encoding without chunked last is refused with 400 and the connection closed", async () => {
      for (const te of ["gzip", "chunked, gzip", "xchunked", "identity"]) {
        const r = await refused(
          msg(["POST / HTTP/1.1", "Host: x", `Transfer-Encoding: ${te}`], "0\r\n\r\n"),
          400,
        );
        expect(r.closed, te).to.equal(true);
      }
    });

    it("RFC 9112 §6.3: an invalid Content-Length is refused with 400 and the connection closed", async () => {
      for (const cl of ["abc", "-1", "+3", "3 4", "0x3", "3, 4", "3.0", ""]) {
        const r = await refused(
          msg(["POST / HTTP/1.1", "Host: x", `Content-Length: ${cl}`], "abcd"),
          400,
        );
        expect(r.closed, cl).to.equal(true);
      }
      const twice = await refused(
        msg(["POST / HTTP/1.1", "Host: x", "Content-Length: 3", "Content-Length: 4"], "abcd"),
        400,
      );
      expect(twice.closed).to.equal(true);
    });

    it("RFC 9112 §6.3: a list of identical Content-Length values is refused or read as one value, never mis-framed", async () => {
      const r = await talk(
        t.port,
        msg(["POST / HTTP/1.1", "Host: x", "Content-Length: 3, 3"], "abc"),
        {
          expect: 1,
          timeoutMs: 3000,
        },
      );
      const res = only(r);
      if (res.status === 200) expect(t.main.requests[0]!.body.toString()).to.equal("abc");
      else expect(res.status).to.equal(400);
    });

    it("RFC 9112 §6.3: an invalid Content-Length in a response is answered 502", async () => {
      const r = await viaRaw("HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok");
      expect(only(r).status).to.equal(502);
    });

    it("RFC 9112 §6.3: a response with Content-Length and Transfer-Encoding reaches the client with one framing only", async () => {
      const r = await viaRaw(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      );
      const res = only(r);
      if (res.status === 200) {
        expect(
          header(res, "content-length") === undefined ||
            header(res, "transfer-encoding") === undefined,
        ).to.equal(true);
        expect(res.body.toString()).to.equal("ok");
      } else expect(res.status).to.equal(502);
    });

    it("RFC 9112 §6.3: a body cut short of its Content-Length is incomplete: the connection is closed, the backend never gets a complete request", async () => {
      const r = await talk(
        t.port,
        msg(["POST / HTTP/1.1", "Host: x", "Content-Length: 10"], "abc"),
        {
          timeoutMs: 4000,
        },
      );
      expect(r.timedOut).to.equal(false);
      expect(r.closed).to.equal(true);
      expect(statuses(r).every(s => s === 408)).to.equal(true, r.raw.toString("latin1"));
      await t.settle();
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9112 §6.3: a request without Content-Length or Transfer-Encoding has no body: the next bytes are the next request", async () => {
      const r = await talk(
        t.port,
        msg(["GET /first HTTP/1.1", "Host: x"]) + msg(["GET /second HTTP/1.1", "Host: x"]),
        { expect: 2, timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([200, 200]);
      expect(t.main.requests.map(x => x.url).sort()).to.deep.equal(["/first", "/second"]);
      expect(t.main.requests.every(x => x.body.length === 0)).to.equal(true);
    });

    it("RFC 9110 §8.6: a Content-Length too large for an integer is refused, not wrapped", async () => {
      await refused(
        msg(["POST / HTTP/1.1", "Host: x", "Content-Length: 99999999999999999999999"], "abc"),
        400,
      );
    });

    it("RFC 9112 §6.3: a response to HEAD carries no content even if the backend sends some", async () => {
      const r = await viaRaw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HEAD");
      const res = only(r);
      expect(res.status).to.equal(200);
      expect(res.body.length).to.equal(0);
      expect(r.rest.length, "bytes after the HEAD response").to.equal(0);
    });

    it("RFC 9112 §7.1: a chunked request body is decoded and forwarded", async () => {
      const rec = await served(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          "3\r\nabc\r\n00a\r\n0123456789\r\n0\r\n\r\n",
        ),
      );
      expect(rec.body.toString()).to.equal("abc0123456789");
    });

    it("RFC 9112 §7.1: a chunk size too large for an integer is refused, not overflowed", async () => {
      const r = await one(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          "10000000000000001\r\nabc\r\n0\r\n\r\n",
        ),
      );
      expect(statuses(r).filter(s => s === 200)).to.deep.equal([]);
      await t.settle();
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9112 §7.1.1: unrecognized chunk extensions are ignored", async () => {
      const rec = await served(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          '3;ext=1;other="q v"\r\nabc\r\n0;last\r\n\r\n',
        ),
      );
      expect(rec.body.toString()).to.equal("abc");
    });

    it("RFC 9112 §7.1.1: over-long chunk extensions get a 4xx", async () => {
      const r = await one(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          `3;x=${"e".repeat(20_000)}\r\nabc\r\n0\r\n\r\n`,
        ),
      );
      expect(statuses(r).length === 0 || statuses(r)[0]! >= 400).to.equal(
        true,
        r.raw.toString("latin1"),
      );
      await t.settle();
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9110 §6.5.1: trailer fields are not merged into the header section (a Host trailer changes nothing)", async () => {
      const rec = await served(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          "3\r\nabc\r\n0\r\nHost: evil\r\nX-T: t\r\n\r\n",
        ),
      );
      expect(field(rec, "host")).to.deep.equal(["x"]);
      expect(rec.body.toString()).to.equal("abc");
      expect(field(rec, "x-t")).to.deep.equal([]);
    });

    it("RFC 9110 §6.5.1: a framing field in the trailer section is refused or ignored, never used for framing", async () => {
      const r = await talk(
        t.port,
        msg(
          ["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"],
          "3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n",
        ) + msg(["GET /next HTTP/1.1", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(r.error).to.equal(null);
      await t.settle();
      // llhttp refuses it (400, closed); an implementation that ignores it serves both requests
      if (r.responses[0]?.status === 400) {
        expect(r.closed).to.equal(true);
        expect(t.main.requests).to.have.length(0);
      } else expect(t.main.requests.map(x => x.body.toString())).to.deep.equal(["abc", ""]);
    });
  });

  describe("RFC 9112 §9: pipelining and closing", () => {
    it("RFC 9112 §9.3.2: responses to pipelined requests come in request order, also when a later one is malformed", async () => {
      const r = await talk(
        t.port,
        msg(["GET /1 HTTP/1.1", "Host: x"]) +
          msg(["GET /2 HTTP/1.1", "Host: a.example"]) +
          "GARBAGE\r\n\r\n",
        { timeoutMs: 3000 },
      );
      expect(r.error).to.equal(null);
      expect(statuses(r)).to.deep.equal([200, 200, 400]);
      expect(r.responses[0]!.body.toString()).to.equal("main ok\n");
      expect(r.responses[1]!.body.toString()).to.equal("a ok\n");
      expect(r.closed).to.equal(true);
    });

    it("RFC 9112 §9.6: after a request with Connection: close nothing more is processed, the connection closes after its response", async () => {
      const r = await talk(
        t.port,
        msg(["GET /last HTTP/1.1", "Host: x", "Connection: close"]) +
          msg(["GET /ignored HTTP/1.1", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([200]);
      expect(r.closed).to.equal(true);
      await t.settle();
      expect(t.main.requests.map(x => x.url)).to.deep.equal(["/last"]);
    });

    it("RFC 9112 §9.6: close wins over keep-alive: an HTTP/1.0 request listing both still ends the connection", async () => {
      const r = await talk(
        t.port,
        msg(["GET /one HTTP/1.0", "Host: x", "Connection: close", "Connection: keep-alive"]) +
          msg(["GET /two HTTP/1.0", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([200]);
      expect(r.closed).to.equal(true);
      await t.settle();
      expect(t.main.requests.map(x => x.url)).to.deep.equal(["/one"]);
    });

    it("RFC 9112 §9.6: a request pipelined after one answered with a closing error is not processed", async () => {
      const r = await talk(
        t.port,
        msg(["GET /ok HTTP/1.1", "Host: x"]) +
          msg(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: gzip, chunked"], "0\r\n\r\n") +
          msg(["GET /after HTTP/1.1", "Host: x"]),
        { timeoutMs: 3000 },
      );
      expect(statuses(r)).to.deep.equal([200, 501]);
      expect(r.closed).to.equal(true);
      await t.settle();
      expect(t.main.requests.map(x => x.url)).to.deep.equal(["/ok"]);
    });
  });

  describe("RFC 9110 §7: forwarding", () => {
    it("RFC 9110 §7.6.1: the fields named in Connection, and Connection itself, are removed before forwarding", async () => {
      const rec = await served(
        msg([
          "GET / HTTP/1.1",
          "Host: x",
          "Connection: x-secret, X-Other",
          "X-Secret: s",
          "X-Other: o",
          "X-Kept: k",
        ]),
      );
      expect(field(rec, "x-secret")).to.deep.equal([]);
      expect(field(rec, "x-other")).to.deep.equal([]);
      expect(field(rec, "x-kept")).to.deep.equal(["k"]);
      expect(field(rec, "connection")).to.not.include("x-secret, X-Other");
    });

    it("RFC 9110 §7.6.1: hop-by-hop fields (Keep-Alive, TE, Proxy-Connection, Upgrade, Transfer-Encoding) are not forwarded (SHOULD)", async () => {
      const rec = await served(
        msg(
          [
            "POST / HTTP/1.1",
            "Host: x",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "Proxy-Connection: keep-alive",
            "Upgrade: h2c",
            "Transfer-Encoding: chunked",
          ],
          "1\r\nz\r\n0\r\n\r\n",
        ),
      );
      for (const f of ["keep-alive", "te", "proxy-connection", "upgrade", "transfer-encoding"])
        expect(field(rec, f), f).to.deep.equal([]);
    });

    it("RFC 9110 §7.6.2: OPTIONS and TRACE with Max-Forwards: 0 are answered by the gateway, not forwarded", async () => {
      const o = await one(msg(["OPTIONS /x HTTP/1.1", "Host: x", "Max-Forwards: 0"]));
      expect(only(o).status).to.equal(200);
      const tr = await one(msg(["TRACE /x HTTP/1.1", "Host: x", "Max-Forwards: 0"]));
      expect(only(tr).status).to.equal(501);
      expect(t.main.requests).to.have.length(0);
    });

    it("RFC 9110 §7.6.2: Max-Forwards is decremented on a forwarded OPTIONS or TRACE (and left alone on other methods)", async () => {
      const rec = await served(msg(["OPTIONS /x HTTP/1.1", "Host: x", "Max-Forwards: 5"]));
      expect(field(rec, "max-forwards")).to.deep.equal(["4"]);
      t.main.requests.length = 0;
      const get = await served(msg(["GET /x HTTP/1.1", "Host: x", "Max-Forwards: 5"]));
      expect(field(get, "max-forwards")).to.deep.equal(["5"]);
    });

    it("RFC 9110 §7.6.3: a forwarded request carries Via with the received protocol version, after any it had", async () => {
      const rec = await served(msg(["GET / HTTP/1.1", "Host: x", "Via: 1.0 fred, 1.1 p.example"]));
      expect(field(rec, "via")).to.deep.equal(["1.0 fred, 1.1 p.example, 1.1 rauta"]);
      t.main.requests.length = 0;
      const ten = await talk(t.port, msg(["GET / HTTP/1.0", "Host: x"]), { timeoutMs: 3000 });
      expect(statuses(ten)).to.deep.equal([200]);
      expect(field(t.main.requests[0]!, "via")).to.deep.equal(["1.0 rauta"]);
    });

    it("RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored: served as a plain request", async () => {
      const r = await talk(
        t.port,
        msg(["GET /plain HTTP/1.0", "Host: x", "Connection: upgrade", "Upgrade: websocket"]),
        {
          timeoutMs: 3000,
        },
      );
      expect(statuses(r)).to.deep.equal([200]);
      expect(t.main.requests).to.have.length(1);
      expect(field(t.main.requests[0]!, "upgrade")).to.deep.equal([]);
    });

    it("RFC 9110 §7.8: Upgrade without the 'upgrade' connection option is not an upgrade (and is not forwarded)", async () => {
      const rec = await served(msg(["GET / HTTP/1.1", "Host: x", "Upgrade: websocket"]));
      expect(field(rec, "upgrade")).to.deep.equal([]);
    });
  });

  describe("RFC 9110 §15.2: interim responses", () => {
    // pending: undici hands 1xx heads to the dispatch handler, which drops them; forwarding them
    // means writing interim responses on both protocols, in order behind pipelined responses
    // (the ordering problem 100 Continue had, see listeners.ts onCheckContinue)
    it.skip("RFC 9110 §15.2: a 1xx (103 Early Hints) from the backend is forwarded before the final response (pending: interim responses are dropped in handler.ts Attempt.headers)", async () => {
      const r = await viaRaw(
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      );
      expect(only(r).interim).to.deep.equal([103]);
    });
  });

  describe("RFC 9110 §10.1.1: Expect", () => {
    it("RFC 9110 §10.1.1: Expect: 100-continue gets 100 Continue before the body is sent, then the final response", async () => {
      const head = msg(["POST / HTTP/1.1", "Host: x", "Content-Length: 3", "Expect: 100-continue"]);
      let interimBeforeBody = false;
      const r = await talk(t.port, [head, "abc"], {
        expect: 1,
        timeoutMs: 3000,
        beforeWrite: async (i, received) => {
          if (i !== 1) return;
          // the 100 must come while the body is still held back
          const until = Date.now() + 1000;
          while (Date.now() < until && !interimBeforeBody) {
            interimBeforeBody = received()
              .toString("latin1")
              .startsWith("HTTP/1.1 100 Continue\r\n");
            if (!interimBeforeBody) await new Promise(res => setTimeout(res, 5));
          }
        },
      });
      expect(interimBeforeBody).to.equal(true);
      const res = only(r);
      expect(res.interim).to.deep.equal([100]);
      expect(res.status).to.equal(200);
      expect(t.main.requests[0]!.body.toString()).to.equal("abc");
      expect(field(t.main.requests[0]!, "expect")).to.deep.equal([]);
    });

    it("RFC 9110 §10.1.1: Expect: 100-continue in an HTTP/1.0 request is ignored (no 100)", async () => {
      const r = await talk(
        t.port,
        msg(["POST / HTTP/1.0", "Host: x", "Content-Length: 3", "Expect: 100-continue"], "abc"),
        {
          timeoutMs: 3000,
        },
      );
      const res = only(r);
      expect(res.interim).to.deep.equal([]);
      expect(res.status).to.equal(200);
    });

    it("RFC 9110 §10.1.1: an expectation other than 100-continue is answered 417 (MAY), and the unread body is not parsed", async () => {
      const r = await refused(
        msg(
          ["POST / HTTP/1.1", "Host: x", "Expect: teapot", "Content-Length: 35"],
          "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        417,
      );
      expect(r.closed).to.equal(true);
    });
  });
});
