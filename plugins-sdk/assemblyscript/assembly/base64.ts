// Base64 (RFC 4648 §4) and base64url (§5) for JWTs and key material. Decoding is strict: only the
// alphabet's characters, no whitespace, padding only where §4 puts it (base64url: none allowed,
// as JWS compact serialization says), and the unused low bits of the last character must be 0,
// so every byte string has exactly one accepted encoding.

function sextet(c: u32, url: bool): i32 {
  if (c - 65 < 26) return <i32>(c - 65);
  if (c - 97 < 26) return <i32>(c - 97 + 26);
  if (c - 48 < 10) return <i32>(c - 48 + 52);
  if (url) {
    if (c == 0x2d) return 62;
    if (c == 0x5f) return 63;
  } else {
    if (c == 0x2b) return 62;
    if (c == 0x2f) return 63;
  }
  return -1;
}

/** Decodes `len` ASCII bytes at `p`; null when they are not strict base64(url). */
export function base64DecodeRaw(p: usize, len: i32, url: bool): Uint8Array | null {
  let n = len;
  if (!url && n % 4 == 0 && n > 0) {
    // standard base64 carries '=' padding to a multiple of 4
    if (load<u8>(p + <usize>(n - 1)) == 0x3d) n--;
    if (load<u8>(p + <usize>(n - 1)) == 0x3d) n--;
  } else if (!url && n % 4 != 0) {
    return null;
  }
  if (n % 4 == 1) return null;
  const out = new Uint8Array((n * 3) >> 2);
  const dst = out.dataStart;
  let acc: u32 = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const v = sextet(<u32>load<u8>(p + <usize>i), url);
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(dst + <usize>(o++), <u8>(acc >> <u32>bits));
    }
  }
  if (bits > 0 && (acc & ((1 << <u32>bits) - 1)) != 0) return null;
  return out;
}

/** Decodes base64url without padding (JWS segments); null when invalid. */
export function base64UrlDecode(s: string): Uint8Array | null {
  const b = String.UTF8.encode(s);
  return base64DecodeRaw(changetype<usize>(b), b.byteLength, true);
}

/** Decodes standard base64 with padding; null when invalid. */
export function base64Decode(s: string): Uint8Array | null {
  const b = String.UTF8.encode(s);
  return base64DecodeRaw(changetype<usize>(b), b.byteLength, false);
}

function encode(bytes: Uint8Array, url: bool): string {
  // literals inside the function: a plugin that never encodes carries neither
  const alphabet = url
    ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const parts = new Array<string>();
  const n = bytes.length;
  let i = 0;
  for (; i + 3 <= n; i += 3) {
    const v = (<u32>bytes[i] << 16) | (<u32>bytes[i + 1] << 8) | <u32>bytes[i + 2];
    parts.push(alphabet.charAt(<i32>(v >> 18)) + alphabet.charAt(<i32>((v >> 12) & 63)) + alphabet.charAt(<i32>((v >> 6) & 63)) + alphabet.charAt(<i32>(v & 63)));
  }
  const rest = n - i;
  if (rest == 1) {
    const v = <u32>bytes[i] << 16;
    parts.push(alphabet.charAt(<i32>(v >> 18)) + alphabet.charAt(<i32>((v >> 12) & 63)) + (url ? "" : "=="));
  } else if (rest == 2) {
    const v = (<u32>bytes[i] << 16) | (<u32>bytes[i + 1] << 8);
    parts.push(alphabet.charAt(<i32>(v >> 18)) + alphabet.charAt(<i32>((v >> 12) & 63)) + alphabet.charAt(<i32>((v >> 6) & 63)) + (url ? "" : "="));
  }
  return parts.join("");
}

/** base64url without padding */
export function base64UrlEncode(bytes: Uint8Array): string {
  return encode(bytes, true);
}

/** standard base64 with padding */
export function base64Encode(bytes: Uint8Array): string {
  return encode(bytes, false);
}
