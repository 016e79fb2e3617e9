// TLS to a backend (a cluster's BackendTLSPolicy settings): Node's connect options for its
// pools, built when a config is prepared, never during a request. The certificate must chain to
// the policy's CA bundle (or the system store) and carry the policy's hostname or, when
// subjectAltNames are given, one of them; anything else fails the handshake, and the request
// with it (HTTP 502), rather than reaching an unverified backend.
import { createHash } from "node:crypto";
import tls from "node:tls";
import type { PeerCertificate } from "node:tls";
import type { ClusterTls } from "../config/schema.ts";
import type { SecretProvider } from "../tls/secrets.ts";
import { secretKey } from "../tls/secrets.ts";

export interface UpstreamTls {
  /** distinguishes pools: same endpoint, different verification or client certificate */
  key: string;
  servername: string;
  connect: tls.ConnectionOptions;
}

function sansOf(cert: PeerCertificate, prefix: "URI:" | "DNS:"): string[] {
  // "DNS:a.example, URI:spiffe://x/y, IP Address:10.0.0.1"; values cannot contain ", "
  return (cert.subjectaltname ?? "")
    .split(", ")
    .filter(e => e.startsWith(prefix))
    .map(e => e.slice(prefix.length));
}

// A Hostname SAN matches a certificate that would be valid for that name (RFC 6125, a
// wildcard certificate covers it) or that lists the very same DNS name (a wildcard SAN).
function hostnameMatches(name: string, cert: PeerCertificate): boolean {
  if (tls.checkServerIdentity(name, cert) === undefined) return true;
  const lower = name.toLowerCase();
  return sansOf(cert, "DNS:").some(d => d.toLowerCase() === lower);
}

/** Node's checkServerIdentity for a policy: hostname, or any of the subjectAltNames. */
export function identityCheck(
  config: Pick<ClusterTls, "serverName" | "subjectAltNames">,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const sans = config.subjectAltNames;
  if (sans.length === 0) return (_host, cert) => tls.checkServerIdentity(config.serverName, cert);
  return (_host, cert) => {
    for (const san of sans) {
      if (san.type === "Hostname" && hostnameMatches(san.value, cert)) return undefined;
      if (san.type === "URI" && sansOf(cert, "URI:").includes(san.value)) return undefined;
    }
    return Object.assign(
      new Error(
        `backend certificate matches none of the subjectAltNames ${sans.map(s => `${s.type}:${s.value}`).join(", ")} (it has ${cert.subjectaltname ?? "none"})`,
      ),
      { code: "ERR_TLS_CERT_ALTNAME_INVALID" },
    );
  };
}

/**
 * Connect options for a TLS cluster. `problem` is set when the client certificate the config
 * names is not available (yet): the connection then goes out without one, and the backend may
 * refuse it.
 */
export function upstreamTls(
  config: ClusterTls,
  secrets: SecretProvider,
): { tls: UpstreamTls; problem?: string } {
  const pair = config.clientCertificate ? secrets.get(config.clientCertificate) : undefined;
  const problem =
    config.clientCertificate && !pair
      ? `client certificate secret ${secretKey(config.clientCertificate)} not found`
      : undefined;
  const key = createHash("sha256")
    .update(
      JSON.stringify([
        config.serverName,
        config.caCertificates ?? "system",
        config.subjectAltNames,
        pair?.cert ?? "",
        pair?.key ?? "",
      ]),
    )
    .digest("hex")
    .slice(0, 16);
  return {
    tls: {
      key,
      servername: config.serverName,
      connect: {
        servername: config.serverName,
        ...(config.caCertificates ? { ca: config.caCertificates } : {}),
        ...(pair ? { cert: pair.cert, key: pair.key } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: identityCheck(config),
      },
    },
    ...(problem ? { problem } : {}),
  };
}
