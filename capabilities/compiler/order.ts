// The one ordering the compiler sorts strings by: code-unit order, locale-independent, so output
// is byte-identical on every machine.
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
