/** Parses "500ms", "30s", "2m", "1h" or a whole number of milliseconds; returns ms or an error message. */
export function parseDuration(value: string | number): number | string {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) return "expected a whole number of milliseconds";
    if (value <= 0) return `expected a positive duration, got ${value}`;
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!match) {
    return /^\s*-/.test(value) ? `expected a positive duration, got "${value}"` : `expected a duration such as "30s", "500ms", "2m" or "1h", got "${value}"`;
  }
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  const ms = Math.round(Number(match[1]) * scale);
  return ms > 0 ? ms : `expected a positive duration, got "${value}"`;
}
