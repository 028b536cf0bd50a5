// The scale benches' lists of numbers from the environment (N, k): one parser, one error naming the variable.

/** Whole numbers in [min, max] from the comma-separated `name` (else `fallback`), distinct and ascending. */
export function numbers(name: string, fallback: string, min: number, max: number): number[] {
  const raw = process.env[name] ?? fallback;
  const values = raw.split(",").map((v) => Number(v.trim()));
  if (!values.length || values.some((v) => !Number.isInteger(v) || v < min || v > max)) {
    throw new Error(`${name}: expected whole numbers from ${min} to ${max}, separated by commas (e.g. "${fallback}"), got "${raw}"`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}
