// Writes bench/results/<metric>.json in the project's one format: medians measured side by side.
import * as fs from "node:fs";
import * as path from "node:path";

export interface CaseResult {
  case?: string;
  metric: string;
  unit: string;
  value: number;
  baseline: number;
  ratio: number;
  runs: number;
  at: string;
  [extra: string]: unknown;
}

export const RESULTS_DIR = path.resolve(__dirname, "..", "..", "bench", "results");

export function median(values: number[]): number {
  if (!values.length) throw new Error("median of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function result(metric: string, unit: string, values: number[], baselines: number[], extra: Record<string, unknown> = {}): CaseResult {
  const value = median(values);
  const baseline = median(baselines);
  return {
    metric,
    unit,
    value: round(value),
    baseline: round(baseline),
    ratio: round(value / baseline, 3),
    runs: values.length,
    at: new Date().toISOString(),
    ...extra,
  };
}

export function writeResult(metric: string, doc: CaseResult | { metric: string; cases: CaseResult[]; [extra: string]: unknown }): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${metric}.json`);
  fs.writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
  return file;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
