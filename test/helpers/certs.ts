// Throwaway certificates for TLS tests, made with openssl in a directory the caller owns:
// self-signed leaves, and a CA that issues server or client certificates.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { TlsKeyPair } from "../../proxy/tls/secrets.ts";

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const RSA = ["-newkey", "rsa:2048", "-nodes"];

export interface CaOptions {
  /** default ec (P-256); the conformance suite's are RSA */
  algorithm?: "ec" | "rsa";
  /**
   * default true. false leaves authority/subject key identifiers out of issued leaves, as the
   * conformance suite does: OpenSSL then picks an issuer by name alone.
   */
  keyIdentifiers?: boolean;
}

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore" });
}

// `req -x509` makes the key and its self-signed certificate in one step; the caller's
// extensions make it a leaf or a CA.
function selfSignedFiles(
  dir: string,
  name: string,
  extensions: string[],
  keyArgs = EC,
): { key: string; crt: string } {
  const key = path.join(dir, `${name}.key`);
  const crt = path.join(dir, `${name}.crt`);
  openssl(
    "req",
    "-x509",
    ...keyArgs,
    "-keyout",
    key,
    "-out",
    crt,
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    ...extensions.flatMap(e => ["-addext", e]),
  );
  return { key, crt };
}

/** A self-signed EC certificate with the given subjectAltName ("DNS:a.example,…"). */
export function selfSigned(dir: string, name: string, san: string): TlsKeyPair {
  const { key, crt } = selfSignedFiles(dir, name, [`subjectAltName=${san}`]);
  return { cert: fs.readFileSync(crt, "utf8"), key: fs.readFileSync(key, "utf8") };
}

export interface Ca {
  /** PEM */
  cert: string;
  issue(name: string, san: string, usage: "serverAuth" | "clientAuth"): TlsKeyPair;
}

/** A CA named `name` that issues leaf certificates. */
export function makeCa(dir: string, name: string, options: CaOptions = {}): Ca {
  const keyArgs = options.algorithm === "rsa" ? RSA : EC;
  const { key, crt } = selfSignedFiles(
    dir,
    name,
    ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign"],
    keyArgs,
  );
  const noKeyIds =
    options.keyIdentifiers === false
      ? "subjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n"
      : "";
  return {
    cert: fs.readFileSync(crt, "utf8"),
    issue(leaf, san, usage) {
      const leafKey = path.join(dir, `${leaf}.key`);
      const csr = path.join(dir, `${leaf}.csr`);
      const leafCrt = path.join(dir, `${leaf}.crt`);
      const ext = path.join(dir, `${leaf}.ext`);
      fs.writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=${usage}\n${noKeyIds}`);
      openssl("req", "-new", ...keyArgs, "-keyout", leafKey, "-out", csr, "-subj", `/CN=${leaf}`);
      openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        crt,
        "-CAkey",
        key,
        "-CAcreateserial",
        "-out",
        leafCrt,
        "-days",
        "1",
        "-extfile",
        ext,
      );
      return { cert: fs.readFileSync(leafCrt, "utf8"), key: fs.readFileSync(leafKey, "utf8") };
    },
  };
}
