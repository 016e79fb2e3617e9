// The `cache_get` / `cache_set` store of one plugin version (ABI v1, plugins-sdk/ABI.md): bytes
// by key with a time to live, kept by the host because a guest's heap does not outlive its call.
// jwt-auth keeps what a verified token yields here, so a client that sends the same token again
// costs a lookup instead of a signature check. Scoped to one LoadedPlugin, i.e. one spec (module +
// config): a new key set or config starts empty, so nothing verified under old keys survives.
// Bounded in entries and bytes; past either bound the least recently used entries go.

interface Entry {
  value: Uint8Array;
  expiresAt: number;
}

export const CACHE_MAX_KEY_BYTES = 8192;
export const CACHE_MAX_VALUE_BYTES = 65536;

export class PluginCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;

  constructor(maxEntries = 10_000, maxBytes = 16 * 1024 * 1024) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value stored under key, or null when absent or expired (an expired entry is dropped). */
  get(key: string, nowMs: number): Uint8Array | null {
    const e = this.entries.get(key);
    if (e === undefined) return null;
    this.entries.delete(key);
    if (e.expiresAt <= nowMs) {
      this.bytes -= e.value.length + key.length;
      return null;
    }
    this.entries.set(key, e); // re-insert: the Map's order is recency
    return e.value;
  }

  /** Stores a copy of value for ttlMs; false when refused (too large, ttl not positive). */
  set(key: string, value: Uint8Array, ttlMs: number, nowMs: number): boolean {
    if (!(ttlMs > 0) || key.length > CACHE_MAX_KEY_BYTES || value.length > CACHE_MAX_VALUE_BYTES)
      return false;
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.bytes -= old.value.length + key.length;
    }
    const size = value.length + key.length;
    while (
      this.entries.size > 0 &&
      (this.entries.size >= this.maxEntries || this.bytes + size > this.maxBytes)
    ) {
      const [k, e] = this.entries.entries().next().value!;
      this.entries.delete(k);
      this.bytes -= e.value.length + k.length;
    }
    this.entries.set(key, { value: value.slice(), expiresAt: nowMs + ttlMs });
    this.bytes += size;
    return true;
  }
}
