// The `cache_get` / `cache_set` store of one plugin version (ABI v1, plugins-sdk/ABI.md): bytes
// by key with a time to live, kept by the host because a guest's heap does not outlive its call.
// jwt-auth keeps what a verified token yields here, so a client that sends the same token again
// costs a lookup instead of a signature check. Scoped to one LoadedPlugin, i.e. one spec (module +
// config): a new key set or config starts empty, so nothing verified under old keys survives.
// Bounded in entries and bytes; past either bound the least recently used entries go. Recency is
// the Map's insertion order, refreshed by a hit only once maxEntries/2 other entries came after
// it: a Map delete and re-insert on every hit cost ~0.3 µs of jwt-auth's cached path, and an
// entry used within that window is still never the first to go.

interface Entry {
  value: Uint8Array;
  expiresAt: number;
  /** this.seq when it was last put at the end of the order */
  seq: number;
}

export const CACHE_MAX_KEY_BYTES = 8192;
export const CACHE_MAX_VALUE_BYTES = 65536;

export class PluginCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly refreshAfter: number;
  private seq = 0;

  constructor(maxEntries = 10_000, maxBytes = 16 * 1024 * 1024) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.refreshAfter = Math.max(1, Math.floor(maxEntries / 2));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value stored under key, or null when absent or expired (an expired entry is dropped). */
  get(key: string, nowMs: number): Uint8Array | null {
    const e = this.entries.get(key);
    if (e === undefined) return null;
    if (e.expiresAt <= nowMs) {
      this.entries.delete(key);
      this.bytes -= e.value.length + key.length;
      return null;
    }
    if (this.seq - e.seq >= this.refreshAfter) {
      this.entries.delete(key);
      this.entries.set(key, e);
      e.seq = ++this.seq;
    }
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
    this.entries.set(key, { value: value.slice(), expiresAt: nowMs + ttlMs, seq: ++this.seq });
    this.bytes += size;
    return true;
  }
}
