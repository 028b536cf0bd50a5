// The demo: bring the local stack up, write state through the workload, change the image the way a
// user would (edit stacks/Pulumi.local.yaml), bring it up again, and show the PE before and after.
import * as fs from "node:fs";
import * as path from "node:path";
import { openStack, PROJECT_ROOT } from "../src/automation/stack";

const CONFIG = path.join(PROJECT_ROOT, "stacks", "Pulumi.local.yaml");
const FROM = "reseat-demo-workload:v1";
const TO = "reseat-demo-workload:v2";

interface PeView {
  peId: string;
  generation: number;
  executableName: string;
  volumeName: string;
  [key: string]: unknown;
}

async function upAndShow(title: string): Promise<PeView> {
  const stack = await openStack({ stackName: "local" });
  const result = await stack.up({ onOutput: (text) => process.stderr.write(text), color: "never" });
  const pes = result.outputs.processingElements?.value as Record<string, PeView>;
  const pe = pes.demo!;
  console.log(`\n=== ${title}: stack outputs for PE "demo" ===\n${JSON.stringify(pe, null, 2)}`);
  return pe;
}

async function state(port: number): Promise<{ version: string; generation: number; lines: string[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/state`);
  return (await res.json()) as { version: string; generation: number; lines: string[] };
}

async function main(): Promise<void> {
  const original = fs.readFileSync(CONFIG, "utf8");
  const port = Number(/PORT:\s*"?(\d+)/.exec(original)?.[1] ?? 18080);
  try {
    const before = await upAndShow("before");
    for (let i = 1; i <= 3; i++) {
      await fetch(`http://127.0.0.1:${port}/append?line=${encodeURIComponent(`written by generation ${before.generation} at ${new Date().toISOString()} #${i}`)}`, { method: "POST" });
    }
    const seenBefore = await state(port);
    console.log(`\nstate seen by ${seenBefore.version} (generation ${seenBefore.generation}): ${seenBefore.lines.length} lines`);
    seenBefore.lines.slice(-5).forEach((line) => console.log(`  ${line}`));

    console.log(`\n--- changing the image ${FROM} -> ${TO} in stacks/Pulumi.local.yaml, then up ---`);
    fs.writeFileSync(CONFIG, original.replace(FROM, TO));
    const after = await upAndShow("after");
    const seenAfter = await state(port);
    console.log(`\nstate seen by ${seenAfter.version} (generation ${seenAfter.generation}): ${seenAfter.lines.length} lines`);
    seenAfter.lines.slice(-5).forEach((line) => console.log(`  ${line}`));

    const kept = seenBefore.lines.every((line) => seenAfter.lines.includes(line));
    console.log(
      `\nsummary: peId ${before.peId} -> ${after.peId}; volume ${before.volumeName} -> ${after.volumeName}; ` +
        `generation ${before.generation} -> ${after.generation}; executable ${before.executableName} -> ${after.executableName}; ` +
        `state ${kept ? "intact" : "LOST"} (${seenBefore.lines.length} lines before, ${seenAfter.lines.length} after)`,
    );
    if (!kept) process.exitCode = 1;
  } finally {
    // Leave the tracked stack config as it was; the next `reseat up` returns the PE to v1 (same volume).
    fs.writeFileSync(CONFIG, original);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
