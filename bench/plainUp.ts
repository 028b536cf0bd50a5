// plain_up_overhead: what plain `pulumi up` (the official Node.js language host running the program in
// its own Node process) costs over the `reseat` CLI (the Automation API with the same program inline)
// for one PE, in the same run, on the same stack: alternating runs of both, per case —
// `preview` (no change), `up` with no change, and `up` with an image change (one replacement).
// value: plain pulumi's median wall time; baseline: the reseat CLI's. Unit: ms.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/automation/stack";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { benchPeSpec } from "./replacementGap";
import { CaseResult, result, writeResult } from "./results";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 5);
const PORT = 18795;
const PE = "bench-plain-up";
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

export async function benchPlainUp(): Promise<string> {
  const dir = path.join(PROJECT_ROOT, ".work", "bench-plain-up");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  // The checkout's project file, its bundled program named relative to the bench folder.
  const project = fs
    .readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")
    .replace(/^main:.*$/m, `main: ${path.relative(dir, path.join(PROJECT_ROOT, "dist", "stacks", "index.js"))}`);
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), project);
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(dir, ".pulumi-state")}` };
  fs.mkdirSync(path.join(dir, ".pulumi-state"));
  let image = 0;
  const setImage = (next: number) => {
    image = next;
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": [spec(IMAGES[image]!)] } }));
  };
  const tools = {
    plain: (command: string) =>
      timed(
        dir,
        "pulumi",
        command === "up" ? ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "bench"] : ["preview", "--non-interactive", "--stack", "bench"],
        env,
      ),
    reseat: (command: string) => timed(dir, process.execPath, [CLI, command, "--cwd", dir, "--stack", "bench", "--json"], env),
  };

  const cases: CaseResult[] = [];
  try {
    await timed(dir, "pulumi", ["stack", "init", "bench", "--non-interactive"], env);
    setImage(0);
    await tools.reseat("up");
    const measure = async (name: string, step: (tool: keyof typeof tools) => Promise<number>) => {
      const samples: Record<keyof typeof tools, number[]> = { plain: [], reseat: [] };
      for (let run = 0; run < RUNS; run++) {
        for (const tool of run % 2 ? (["reseat", "plain"] as const) : (["plain", "reseat"] as const)) {
          samples[tool].push(await step(tool));
        }
        process.stderr.write(`${name} ${run + 1}/${RUNS}: plain ${samples.plain.at(-1)} ms, reseat ${samples.reseat.at(-1)} ms\n`);
      }
      cases.push({ case: name, ...result("plain_up_overhead", "ms", samples.plain, samples.reseat, { samples }) });
    };
    await measure("preview, no change", (tool) => tools[tool]("preview"));
    await measure("up, no change", (tool) => tools[tool]("up"));
    await measure("up, image change (one replacement)", (tool) => {
      setImage(1 - image);
      return tools[tool]("up");
    });
  } finally {
    await tools.reseat("destroy").catch(() => undefined);
    const backend = new DockerBackend();
    for (const e of await backend.listExecutables(PE)) await backend.remove(e.id);
    await backend.removeVolume(`reseat-${PE}-state`).catch(() => undefined);
  }
  return writeResult("plain_up_overhead", { metric: "plain_up_overhead", cases });
}

const spec = (image: string) => benchPeSpec(PE, PORT, image);

/** Wall time of one command run to its end (ms); fails with its output unless it exits 0. */
function timed(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Math.round(performance.now() - started)) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${output.slice(-3000)}`)),
    );
  });
}
