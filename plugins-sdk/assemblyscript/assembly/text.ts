// ASCII-only text helpers. HTTP's case-insensitive parts (header names, schemes, hosts, tokens)
// are ASCII; String#toLowerCase is full Unicode and costs ~8 KB of tables in every module.

/** `s` with A–Z lowered; every other character as is. */
export function asciiLower(s: string): string {
  let i = 0;
  for (; i < s.length; i++) if (<u32>s.charCodeAt(i) - 65 < 26) break;
  if (i == s.length) return s;
  const out = changetype<string>(__new(<usize>s.length << 1, idof<string>()));
  const src = changetype<usize>(s);
  const dst = changetype<usize>(out);
  for (let k = 0; k < s.length; k++) {
    const c = <u32>load<u16>(src + (<usize>k << 1));
    store<u16>(dst + (<usize>k << 1), <u16>(c - 65 < 26 ? c | 32 : c));
  }
  return out;
}

/** `s` with a–z raised; every other character as is. */
export function asciiUpper(s: string): string {
  const out = changetype<string>(__new(<usize>s.length << 1, idof<string>()));
  const src = changetype<usize>(s);
  const dst = changetype<usize>(out);
  for (let k = 0; k < s.length; k++) {
    const c = <u32>load<u16>(src + (<usize>k << 1));
    store<u16>(dst + (<usize>k << 1), <u16>(c - 97 < 26 ? c & ~32 : c));
  }
  return out;
}

/** Case-insensitive ASCII equality. */
export function asciiEqualsIgnoreCase(a: string, b: string): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = <u32>a.charCodeAt(i);
    let y = <u32>b.charCodeAt(i);
    if (x - 65 < 26) x |= 32;
    if (y - 65 < 26) y |= 32;
    if (x != y) return false;
  }
  return true;
}

/** `s` without leading and trailing spaces and tabs (HTTP's optional whitespace). */
export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) == 32 || s.charCodeAt(a) == 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) == 32 || s.charCodeAt(b - 1) == 9)) b--;
  return a == 0 && b == s.length ? s : s.substring(a, b);
}

/** True when `s` holds no CR, LF or NUL: a valid header value as far as the host checks. */
export function isHeaderValueSafe(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 13 || c == 10 || c == 0) return false;
  }
  return true;
}

/** True for an RFC 9110 token (header names, auth schemes). */
export function isToken(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    // ! # $ % & ' * + - . ^ _ ` | ~
    const sym = c == 33 || (c >= 35 && c <= 39) || c == 42 || c == 43 || c == 45 || c == 46 || c == 94 || c == 95 || c == 96 || c == 124 || c == 126;
    if (!alnum && !sym) return false;
  }
  return true;
}
