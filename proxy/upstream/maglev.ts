// Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): a lookup table of prime size M;
// each backend i has a permutation of the table slots given by offset = h1(name) mod M and
// skip = h2(name) mod (M-1) + 1; backends take turns claiming their next preferred empty slot
// until the table is full. Removing one of N backends remaps about 1/N of keys.
export const DEFAULT_TABLE_SIZE = 65537;

// FNV-1a 32-bit with a seed; good enough to spread names and keys, no allocation.
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

export class Maglev {
  readonly size: number;
  /** slot → backend index */
  readonly table: Int32Array;
  readonly backends: readonly string[];

  constructor(backends: readonly string[], size = DEFAULT_TABLE_SIZE) {
    if (!isPrime(size)) throw new Error(`maglev table size ${size} is not prime`);
    this.size = size;
    this.backends = backends;
    this.table = new Int32Array(size).fill(-1);
    const n = backends.length;
    if (n === 0) return;
    const offset = new Uint32Array(n);
    const skip = new Uint32Array(n);
    const next = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const name = backends[i]!;
      offset[i] = hash32(name, 0x9747b28c) % size;
      skip[i] = (hash32(name, 0x1b873593) % (size - 1)) + 1;
    }
    let filled = 0;
    for (;;) {
      for (let i = 0; i < n; i++) {
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (this.table[c]! >= 0) {
          next[i] = next[i]! + 1;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        this.table[c] = i;
        next[i] = next[i]! + 1;
        if (++filled === size) return;
      }
    }
  }

  /** Backend index for a key, or -1 when there are no backends. */
  lookup(key: string): number {
    return this.table[hash32(key) % this.size]!;
  }
}
