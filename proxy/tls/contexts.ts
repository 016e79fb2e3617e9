// SNI: one SecureContext per certificate, indexed by hostname (exact, "*.suffix", default "*"),
// built when a config (or a rotated Secret) arrives, never during a handshake.
import tls from "node:tls";
import type { Listener } from "../config/schema.ts";
import type { SecretProvider, TlsKeyPair } from "./secrets.ts";
import { secretKey } from "./secrets.ts";
import { verifyingCa } from "./client-validation.ts";

export class SniContexts {
  private readonly exact = new Map<string, tls.SecureContext>();
  private readonly wildcard = new Map<string, tls.SecureContext>();
  defaultContext: tls.SecureContext | null = null;
  defaultPair: TlsKeyPair | null = null;
  readonly problems: string[] = [];

  constructor(listener: Listener, secrets: SecretProvider, cache: Map<string, tls.SecureContext>) {
    for (const cert of listener.tls?.certificates ?? []) {
      const pair = secrets.get(cert.secretRef);
      const ref = secretKey(cert.secretRef);
      if (!pair) {
        this.problems.push(`listener ${listener.name}: secret ${ref} not found`);
        continue;
      }
      // client-certificate validation: the CA the client's chain must lead to is part of each
      // context, as SNICallback replaces the server's
      const ca = verifyingCa(listener.tls?.clientValidation);
      const cacheKey = `${pair.cert}\0${pair.key}\0${ca ?? ""}`;
      let ctx = cache.get(cacheKey);
      if (!ctx) {
        try {
          ctx = tls.createSecureContext({ cert: pair.cert, key: pair.key, ...(ca ? { ca } : {}) });
        } catch (err) {
          this.problems.push(`listener ${listener.name}: secret ${ref}: ${(err as Error).message}`);
          continue;
        }
        cache.set(cacheKey, ctx);
      }
      for (const h of cert.hostnames) {
        const name = h.toLowerCase();
        if (name === "*") {
          if (!this.defaultContext) {
            this.defaultContext = ctx;
            this.defaultPair = pair;
          }
        } else if (name.startsWith("*.")) {
          if (!this.wildcard.has(name.slice(1))) this.wildcard.set(name.slice(1), ctx);
        } else if (!this.exact.has(name)) this.exact.set(name, ctx);
      }
      if (!this.defaultPair) this.defaultPair = pair; // the first certificate answers SNI-less clients
    }
  }

  /**
   * Which listener hostname `name` falls under: itself (an exact listener hostname), "*.suffix",
   * "*" (a listener without hostname), or null (none: the handshake was refused). The same
   * choice as lookup(), as a value two names can be compared by.
   */
  listenerOf(name: string): string | null {
    const n = name.toLowerCase();
    if (this.exact.has(n)) return n;
    let dot = n.indexOf(".");
    while (dot > 0 && dot < n.length - 1) {
      const suffix = n.slice(dot);
      if (this.wildcard.has(suffix)) return `*${suffix}`;
      dot = n.indexOf(".", dot + 1);
    }
    return this.defaultContext !== null ? "*" : null;
  }

  lookup(servername: string): tls.SecureContext | null {
    const name = servername.toLowerCase();
    const e = this.exact.get(name);
    if (e) return e;
    let dot = name.indexOf(".");
    while (dot > 0 && dot < name.length - 1) {
      const w = this.wildcard.get(name.slice(dot));
      if (w) return w;
      dot = name.indexOf(".", dot + 1);
    }
    return this.defaultContext;
  }
}
