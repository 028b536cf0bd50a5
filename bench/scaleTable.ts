// The scale bench's results as Markdown tables (printed at the end of a run, for docs/scale.md).
import type { CaseResult } from "./results";

const PEERS = ["opentofu", "compose", "statefulset"] as const;

export function scaleTables(cases: CaseResult[]): string {
  const s = (ms: unknown) => (typeof ms === "number" ? (ms / 1000).toFixed(1) : "—");
  const x = (ratio: unknown) => (typeof ratio === "number" ? `${ratio.toFixed(2)}×` : "—");
  const lines = [
    "| N | k | reseat as | reseat (s) | floor (s) | reseat ÷ floor | OpenTofu (s) | reseat ÷ OpenTofu | Compose (s) | reseat ÷ Compose | StatefulSet (s) | reseat ÷ StatefulSet |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of cases.filter((c) => c.case?.startsWith("rollout_"))) {
    lines.push(
      `| ${c.groupSize} | ${c.concurrency} | ${c.design ?? "group"} | ${s(c.value)} | ${s(c.baseline)} | ${x(c.ratio)} | ${PEERS.map((p) => `${s(c[p])} | ${x(c[`ratio_${p}`])}`).join(" | ")} |`,
    );
  }
  lines.push("", "| case | value | baseline | ratio |", "|---|---|---|---|");
  for (const c of cases.filter((c) => !c.case?.startsWith("rollout_"))) {
    lines.push(`| \`${c.case}\` | ${c.value} ${c.unit} | ${c.baseline} ${c.unit} | ${x(c.ratio)} |`);
  }
  return lines.join("\n") + "\n";
}
