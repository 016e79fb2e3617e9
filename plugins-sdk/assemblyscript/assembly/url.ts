// Percent-encoding (RFC 3986) and application/x-www-form-urlencoded query helpers.

function unreserved(c: u32): bool {
  return c - 65 < 26 || c - 97 < 26 || c - 48 < 10 || c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e;
}

/** Percent-encodes every byte of `s`'s UTF-8 but the unreserved set (as encodeURIComponent, plus !'()*). */
export function percentEncode(s: string): string {
  const b = String.UTF8.encode(s);
  const p = changetype<usize>(b);
  const n = b.byteLength;
  const out = new Uint8Array(n * 3);
  const dst = out.dataStart;
  let o: usize = 0;
  for (let i = 0; i < n; i++) {
    const c = <u32>load<u8>(p + <usize>i);
    if (unreserved(c)) {
      store<u8>(dst + o++, <u8>c);
    } else {
      store<u8>(dst + o++, 0x25);
      store<u8>(dst + o++, <u8>hexDigit(c >> 4));
      store<u8>(dst + o++, <u8>hexDigit(c & 15));
    }
  }
  return String.UTF8.decodeUnsafe(dst, o);
}

function hexDigit(v: u32): u32 {
  return v < 10 ? 48 + v : 55 + v;
}

function hexVal(c: u32): i32 {
  if (c - 48 < 10) return <i32>(c - 48);
  if (c - 97 < 6) return <i32>(c - 97 + 10);
  if (c - 65 < 6) return <i32>(c - 65 + 10);
  return -1;
}

/** Decodes %XX escapes (and '+' as a space when `plusIsSpace`); a malformed escape stays as is. */
export function percentDecode(s: string, plusIsSpace: bool = false): string {
  if (s.indexOf("%") < 0 && (!plusIsSpace || s.indexOf("+") < 0)) return s;
  const b = String.UTF8.encode(s);
  const p = changetype<usize>(b);
  const n = b.byteLength;
  const out = new Uint8Array(n);
  const dst = out.dataStart;
  let o: usize = 0;
  for (let i = 0; i < n; i++) {
    const c = <u32>load<u8>(p + <usize>i);
    if (c == 0x25 && i + 2 < n) {
      const h = hexVal(<u32>load<u8>(p + <usize>(i + 1)));
      const l = hexVal(<u32>load<u8>(p + <usize>(i + 2)));
      if (h >= 0 && l >= 0) {
        store<u8>(dst + o++, <u8>((h << 4) | l));
        i += 2;
        continue;
      }
    }
    store<u8>(dst + o++, plusIsSpace && c == 0x2b ? 0x20 : <u8>c);
  }
  return String.UTF8.decodeUnsafe(dst, o);
}

/** The first value of query parameter `name` (decoded), null when absent. */
export function queryParam(query: string, name: string): string | null {
  if (query.length == 0) return null;
  const parts = query.split("&");
  for (let i = 0; i < parts.length; i++) {
    const part = unchecked(parts[i]);
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.substring(0, eq);
    if (percentDecode(k, true) == name) return eq < 0 ? "" : percentDecode(part.substring(eq + 1), true);
  }
  return null;
}

/** `query` without every parameter whose decoded name is in `names` (others keep their exact bytes). */
export function queryWithout(query: string, names: string[]): string {
  if (query.length == 0) return query;
  const parts = query.split("&");
  const kept = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const part = unchecked(parts[i]);
    if (part.length == 0) continue;
    const eq = part.indexOf("=");
    const k = percentDecode(eq < 0 ? part : part.substring(0, eq), true);
    if (!names.includes(k)) kept.push(part);
  }
  return kept.join("&");
}

/** `query` with name=value appended, both percent-encoded. */
export function queryWith(query: string, name: string, value: string): string {
  const pair = percentEncode(name) + "=" + percentEncode(value);
  return query.length == 0 ? pair : query + "&" + pair;
}
