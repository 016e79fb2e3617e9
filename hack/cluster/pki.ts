// Local PKI for the dev cluster, made with the openssl CLI: a CA, the API server's serving cert,
// the service-account signing key pair and an admin client cert (O=system:masters). Reused while
// the CA exists, so a kubeconfig handed out earlier stays valid across restarts.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiserverURL, net, paths } from "./config.ts";
import { run } from "./util.ts";

export interface Pki {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  saKey: string;
  saPub: string;
  adminCert: string;
  adminKey: string;
}

export function pkiPaths(dir = paths.pki): Pki {
  const p = (f: string) => join(dir, f);
  return {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    apiserverCert: p("apiserver.crt"),
    apiserverKey: p("apiserver.key"),
    saKey: p("sa.key"),
    saPub: p("sa.pub"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
  };
}

function ecKey(out: string): void {
  run("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    out,
  ]);
}

function signed(pki: Pki, key: string, cert: string, subj: string, ext: string): void {
  const csr = `${cert}.csr`;
  const extFile = `${cert}.ext`;
  writeFileSync(extFile, ext);
  run("openssl", ["req", "-new", "-key", key, "-subj", subj, "-out", csr]);
  run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    pki.caCert,
    "-CAkey",
    pki.caKey,
    "-CAcreateserial",
    "-days",
    "3650",
    "-sha256",
    "-extfile",
    extFile,
    "-out",
    cert,
  ]);
}

export function ensurePki(): Pki {
  const pki = pkiPaths();
  if ([...Object.values(pki)].every(f => existsSync(f))) return pki;
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 });
  ecKey(pki.caKey);
  run("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    pki.caKey,
    "-subj",
    "/CN=rauta-dev-ca",
    "-days",
    "3650",
    "-sha256",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    "-out",
    pki.caCert,
  ]);
  ecKey(pki.apiserverKey);
  const sans = [
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "DNS:localhost",
    "IP:127.0.0.1",
    `IP:${net.bridgeIP}`,
    `IP:${net.apiServiceIP}`,
  ].join(",");
  signed(
    pki,
    pki.apiserverKey,
    pki.apiserverCert,
    "/CN=kube-apiserver",
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`,
  );
  ecKey(pki.adminKey);
  signed(
    pki,
    pki.adminKey,
    pki.adminCert,
    "/O=system:masters/CN=rauta-admin",
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
  );
  run("openssl", [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    pki.saKey,
  ]);
  run("openssl", ["pkey", "-in", pki.saKey, "-pubout", "-out", pki.saPub]);
  return pki;
}

/** A kubeconfig with embedded admin credentials (works from any working directory, any user). */
export function writeKubeconfig(pki: Pki, file = paths.kubeconfig): string {
  const b64 = (f: string) => run("base64", ["-w0", f]).trim();
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: rauta
  cluster:
    server: ${apiserverURL}
    certificate-authority-data: ${b64(pki.caCert)}
users:
- name: rauta-admin
  user:
    client-certificate-data: ${b64(pki.adminCert)}
    client-key-data: ${b64(pki.adminKey)}
contexts:
- name: rauta
  context: {cluster: rauta, user: rauta-admin}
current-context: rauta
`,
    { mode: 0o600 },
  );
  return file;
}
