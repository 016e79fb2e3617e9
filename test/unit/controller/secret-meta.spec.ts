// What the compiler learns of a Secret: names of its keys, and for a kubernetes.io/tls Secret
// whether tls.crt and tls.key can serve TLS. The data itself is never kept.
import { expect } from "chai";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { secretMeta } from "../../../capabilities/controller/secret-meta.ts";

const input = readFileSync(
  new URL("../../fixtures/compiler/listener-tls-malformed-certificate/input.yaml", import.meta.url),
  "utf8",
);
// the fixture's usable pair (PEM blocks of the Secret "good")
const pem = (kind: string) =>
  new RegExp(`-----BEGIN ${kind}-----[\\s\\S]*?-----END ${kind}-----`)
    .exec(input)![0]
    .replace(/\n\s+/g, "\n");
const crt = pem("CERTIFICATE");
const key = pem("PRIVATE KEY");
const b64 = (s: string) => Buffer.from(s).toString("base64");
const meta = { name: "s", namespace: "default" };

describe("secret metadata for the compiler", () => {
  it("a usable pair, as data (base64) or stringData, has no problem and keeps no data", () => {
    for (const s of [
      {
        metadata: meta,
        type: "kubernetes.io/tls",
        data: { "tls.crt": b64(crt), "tls.key": b64(key) },
      },
      { metadata: meta, type: "kubernetes.io/tls", stringData: { "tls.crt": crt, "tls.key": key } },
    ]) {
      const m = secretMeta(s);
      expect(m).to.deep.equal({
        metadata: meta,
        type: "kubernetes.io/tls",
        keys: ["tls.crt", "tls.key"],
      });
    }
  });

  it("says what is wrong: not a certificate, not a key, a key of another certificate", () => {
    const other = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    const otherKey = other.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const problem = (c: string, k: string) =>
      secretMeta({
        metadata: meta,
        type: "kubernetes.io/tls",
        stringData: { "tls.crt": c, "tls.key": k },
      }).tlsProblem;
    expect(problem("nope", key)).to.equal("tls.crt is not a PEM certificate");
    expect(problem(crt, "nope")).to.equal("tls.key is not a PEM private key");
    expect(problem(crt, otherKey)).to.equal(
      "tls.key does not belong to the certificate in tls.crt",
    );
  });

  it("does not look inside Secrets of other types", () => {
    const m = secretMeta({
      metadata: meta,
      type: "Opaque",
      stringData: { "tls.crt": "x", "tls.key": "y" },
    });
    expect(m.tlsProblem).to.equal(undefined);
  });
});
