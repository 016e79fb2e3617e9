// Server options for client-certificate validation on an HTTPS listener (Gateway
// spec.tls.frontend), shared by the listener's server and its SNI contexts.
import type { Listener } from "../config/schema.ts";

export type ClientValidation = NonNullable<NonNullable<Listener["tls"]>["clientValidation"]>;

/**
 * The CAs OpenSSL checks client chains against: only where the check decides anything.
 * AllowInsecureFallback serves every client, so it asks for a certificate without checking it.
 * Checking would not only be wasted: a client certificate whose RSA signature fails against a
 * same-named CA (the conformance suite's have no authorityKeyIdentifier) leaves the failure on
 * OpenSSL's error queue, and Node (v26.10) then reports it on the connection's next read and
 * resets a connection it had let through.
 */
export function verifyingCa(validation: ClientValidation | null | undefined): string | undefined {
  return validation?.mode === "AllowValidOnly" ? validation.caCertificates : undefined;
}

/** requestCert/rejectUnauthorized/ca for tls.createServer and http2.createSecureServer. */
export function clientCertificateOptions(validation: ClientValidation | null | undefined): {
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  ca?: string;
} {
  if (!validation) return {};
  const ca = verifyingCa(validation);
  return {
    requestCert: true,
    rejectUnauthorized: validation.mode === "AllowValidOnly",
    ...(ca ? { ca } : {}),
  };
}
