// Gateway API durations (GEP-2257): one to four <number><unit> pairs, units h, m, s, ms.
const PART = /([0-9]{1,5})(h|ms|m|s)/g;
const WHOLE = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

export function parseDuration(value: string): number | undefined {
  if (!WHOLE.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(PART))
    total += Number(amount) * (UNIT_MS[unit!] ?? 0);
  return total;
}
