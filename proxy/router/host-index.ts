// Values by hostname, looked up as the Gateway API matches hostnames: the exact name, then
// wildcards by longest suffix ("*.b.example.com" before "*.example.com"; a wildcard covers one
// or more labels), then "*". Shared by the HTTP router (virtual hosts) and the SNI table
// (TLS listeners). The first value given for a name wins.
export class HostIndex<T> {
  private readonly exact = new Map<string, T>();
  // key: ".example.com" for "*.example.com"
  private readonly wildcard = new Map<string, T>();
  private star: T | null = null;

  constructor(entries: Iterable<readonly [string, T]>) {
    for (const [hostname, value] of entries) {
      const name = hostname.toLowerCase();
      if (name === "*") this.star ??= value;
      else if (name.startsWith("*.")) {
        const key = name.slice(1);
        if (!this.wildcard.has(key)) this.wildcard.set(key, value);
      } else if (!this.exact.has(name)) this.exact.set(name, value);
    }
  }

  /** host: lowercased, without port; null matches only "*". */
  lookup(host: string | null): T | null {
    if (host === null) return this.star;
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    if (this.wildcard.size) {
      // longest suffix first: "a.b.example.com" tries ".b.example.com", ".example.com", ".com"
      let dot = host.indexOf(".");
      while (dot !== -1 && dot < host.length - 1) {
        if (dot > 0) {
          const w = this.wildcard.get(host.slice(dot));
          if (w !== undefined) return w;
        }
        dot = host.indexOf(".", dot + 1);
      }
    }
    return this.star;
  }
}
