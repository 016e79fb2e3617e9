// Path normalization before matching (RFC 3986 §6.2.2 + the escaped-slash and merge-slash
// settings of Envoy Gateway's ClientTrafficPolicy). Each row: raw path → what the router sees.
import { expect } from "chai";
import fc from "fast-check";
import { DEFAULT_PATH_NORMALIZATION, normalizePath } from "../../../proxy/router/normalize-path.ts";
import type { NormalizedPath, PathNormalization } from "../../../proxy/router/normalize-path.ts";

const ok = (path: string): NormalizedPath => ({ kind: "ok", path });
const redirect = (path: string): NormalizedPath => ({ kind: "redirect", path });

describe("path normalization", () => {
  const cases: Array<[string, NormalizedPath, Partial<PathNormalization>?]> = [
    ["/", ok("/")],
    ["/public/index.html", ok("/public/index.html")],
    // dot-segments (RFC 3986 §5.2.4)
    ["/public/../admin", ok("/admin")],
    ["/public/./admin", ok("/public/admin")],
    ["/a/b/../../admin", ok("/admin")],
    ["/..", ok("/")],
    ["/../../etc/passwd", ok("/etc/passwd")],
    ["/a/..", ok("/")],
    ["/a/.", ok("/a/")],
    ["/a/b/", ok("/a/b/")],
    ["/a/..b/c.", ok("/a/..b/c.")],
    ["/a/.../b", ok("/a/.../b")],
    // percent-encoded dot-segments are dot-segments once the unreserved "." is decoded
    ["/public/%2e%2e/admin", ok("/admin")],
    ["/public/%2E%2e/admin", ok("/admin")],
    ["/public/.%2E/admin", ok("/admin")],
    ["/public/%2e/admin", ok("/public/admin")],
    // unreserved characters decoded, everything else uppercased
    ["/%61dmin", ok("/admin")],
    ["/%7Euser/%2d", ok("/~user/-")],
    ["/a%20b", ok("/a%20b")],
    ["/a%3fb%c3%a9", ok("/a%3Fb%C3%A9")],
    // backslash is a separator, as browsers and many backends treat it
    ["/public\\..\\admin", ok("/admin")],
    // merge slashes (default on)
    ["//admin", ok("/admin")],
    ["/a///b//", ok("/a/b/")],
    ["/a//../b", ok("/b")],
    ["//admin", ok("//admin"), { mergeSlashes: false }],
    ["/a//../b", ok("/a/b"), { mergeSlashes: false }],
    // escaped slashes: default unescape and redirect to the path we would match
    ["/public%2F..%2Fadmin", redirect("/admin")],
    ["/a%2fb", redirect("/a/b")],
    ["/a%5Cb", redirect("/a/b")],
    ["/a%2Fb", ok("/a%2Fb"), { escapedSlashes: "KeepUnchanged" }],
    ["/a%2f..", ok("/a%2F.."), { escapedSlashes: "KeepUnchanged" }],
    ["/a%5cb", ok("/a%5Cb"), { escapedSlashes: "KeepUnchanged" }],
  ];
  for (const [raw, want, opts] of cases) {
    it(`${raw}${opts ? ` ${JSON.stringify(opts)}` : ""} → ${want.kind} ${"path" in want ? want.path : ""}`, () => {
      expect(normalizePath(raw, { ...DEFAULT_PATH_NORMALIZATION, ...opts })).to.deep.equal(want);
    });
  }

  it("rejects escaped slashes with RejectRequest", () => {
    const r = normalizePath("/a%2Fb", { mergeSlashes: true, escapedSlashes: "RejectRequest" });
    expect(r.kind).to.equal("reject");
  });

  it("rejects malformed percent-encoding with the offset", () => {
    for (const raw of ["/a%", "/a%2", "/a%zz", "/%g0/x"]) {
      const r = normalizePath(raw, DEFAULT_PATH_NORMALIZATION);
      expect(r.kind, raw).to.equal("reject");
      if (r.kind === "reject")
        expect(r.detail).to.match(/invalid percent-encoding in path at offset \d+/);
    }
  });

  it("returns the same string when the path is already normal (no allocation)", () => {
    const p = "/api/v1/users/42";
    const r = normalizePath(p, DEFAULT_PATH_NORMALIZATION);
    expect(r.kind === "ok" && r.path).to.equal(p);
  });

  it("is idempotent and never leaves a dot-segment, an escaped unreserved byte or '//' (property)", () => {
    const seg = fc.constantFrom(
      "a",
      "admin",
      ".",
      "..",
      "%2e",
      "%2E%2e",
      "%41",
      "",
      "%2F",
      "\\",
      "%5c",
      "b%20c",
      "~",
    );
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 10 }), parts => {
        const raw = `/${parts.join("/")}`;
        const r = normalizePath(raw, DEFAULT_PATH_NORMALIZATION);
        if (r.kind === "reject") return false;
        const again = normalizePath(r.path, DEFAULT_PATH_NORMALIZATION);
        expect(again).to.deep.equal(ok(r.path));
        expect(r.path.split("/")).to.not.include.members([".", ".."]);
        expect(r.path).to.not.match(/\/\/|%(2[Ee]|4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9AE])/);
        return true;
      }),
      { numRuns: 500 },
    );
  });
});
