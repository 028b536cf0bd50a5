// plain_up_overhead: what plain `pulumi up` (the official Node.js language host running the program in
// its own Node process) costs over the `reseat` CLI (the Automation API with the same program inline)
// for one PE, in the same run, on the same stack: alternating runs of both, per case —
// `preview` (no change), `up` with no change, and `up` with an image change (one replacement).
// value: plain pulumi's median wall time; baseline: the reseat CLI's. Unit: ms.
//
// The cases "python: …" and "yaml: …" (the same three steps): plain `pulumi` on a Python and on a YAML
// program using reseat's plugin package, each against plain `pulumi` on a Node.js program (the README's
// user program, `reseat/components`) declaring the same PE — value: the language's median; baseline: the
// Node program's, in the same run (goal: ratio ≤ 1.2). The three programs have project folders of their
// own in the temp dir (bench/languageProjects.ts); the Node one installs reseat as the README says, from
// the checkout's `npm pack` tarball with @pulumi/pulumi beside it (a symlink to the checkout would load the
// checkout's node_modules, not what a user has). Each run steps all three languages, the order rotated
// per run (node, python, yaml; then python, yaml, node; …). The PEs and their volumes are removed at the end.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/automation/stack";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { buildInstallables, LANGUAGES, Language, languageEnv, languageProject, run, setStackConfig } from "./languageProjects";
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
    await removePe(PE);
  }
  cases.push(...(await languageCases()));
  return writeResult("plain_up_overhead", { metric: "plain_up_overhead", cases });
}

/** The same PE from a Python, a YAML and a Node.js program (plain `pulumi` each): Python and YAML against Node. */
async function languageCases(): Promise<CaseResult[]> {
  const STACK = "bench";
  const peOf = (language: Language) => `bench-plain-up-${language}`;
  const portOf = (language: Language) => PORT + 1 + LANGUAGES.indexOf(language);
  const images = await Promise.all(IMAGES.map(async (tag) => (await run(PROJECT_ROOT, "docker", ["image", "inspect", "--format", "{{.Id}}", tag])).trim()));
  for (const language of LANGUAGES) await removePe(peOf(language));
  const installables = await buildInstallables();
  const dirs = {} as Record<Language, string>;
  const image = { node: 0, python: 0, yaml: 0 } as Record<Language, number>;
  const setImage = (language: Language, next: number) => {
    image[language] = next;
    setStackConfig(dirs[language], STACK, { image: images[next]!, port: portOf(language) });
  };
  const pulumi = (language: Language, command: "preview" | "up") =>
    timed(
      dirs[language],
      "pulumi",
      command === "up" ? ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK] : ["preview", "--non-interactive", "--stack", STACK],
      languageEnv(dirs[language], language),
    );
  const cases: CaseResult[] = [];
  try {
    for (const language of LANGUAGES) {
      dirs[language] = await languageProject(installables, language, peOf(language), STACK);
      setImage(language, 0);
      await pulumi(language, "up");
    }
    const measure = async (name: string, step: (language: Language) => Promise<number>) => {
      const samples = { node: [], python: [], yaml: [] } as Record<Language, number[]>;
      for (let r = 0; r < RUNS; r++) {
        // Rotated per run, so that no language always follows the same one.
        for (const language of [...LANGUAGES.slice(r % 3), ...LANGUAGES.slice(0, r % 3)]) samples[language].push(await step(language));
        process.stderr.write(`${name} ${r + 1}/${RUNS}: ${LANGUAGES.map((l) => `${l} ${samples[l].at(-1)} ms`).join(", ")}\n`);
      }
      for (const language of ["python", "yaml"] as const) {
        cases.push({ case: `${language}: ${name}`, ...result("plain_up_overhead", "ms", samples[language], samples.node, { baselineIs: "node", samples }) });
      }
    };
    await measure("preview, no change", (language) => pulumi(language, "preview"));
    await measure("up, no change", (language) => pulumi(language, "up"));
    await measure("up, image change (one replacement)", async (language) => {
      const before = await runningGeneration(peOf(language));
      setImage(language, 1 - image[language]!);
      const ms = await pulumi(language, "up");
      // Untimed: the step really replaced the executable (a config the program ignored would time a no-op).
      const after = await runningGeneration(peOf(language));
      if (after !== before + 1) throw new Error(`${language}: an image change left ${peOf(language)} at generation ${after} (was ${before})`);
      return ms;
    });
  } finally {
    for (const language of LANGUAGES) {
      if (dirs[language]) {
        const env = languageEnv(dirs[language], language);
        await run(dirs[language], "pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK], env).catch(() => undefined);
      }
      await removePe(peOf(language));
    }
    fs.rmSync(installables.root, { recursive: true, force: true });
  }
  return cases;
}

/** The generation of the PE's one running executable. */
async function runningGeneration(peId: string): Promise<number> {
  const running = (await new DockerBackend().listExecutables(peId)).filter((e) => e.running);
  if (running.length !== 1) throw new Error(`${peId}: ${running.length} running executables, expected 1`);
  return running[0]!.generation;
}

/** Whatever of the PE is left on the engine: its executables and its state volume. */
async function removePe(peId: string): Promise<void> {
  const backend = new DockerBackend();
  for (const e of await backend.listExecutables(peId)) await backend.remove(e.id);
  await backend.removeVolume(`reseat-${peId}-state`).catch(() => undefined);
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
