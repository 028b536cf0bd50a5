// Issue 20: a YAML program (the README's) uses reseat as a plugin package. A fresh folder with nothing of this checkout
// but the package (scripts/plugin.sh), `add-to-project`, then the plain `pulumi` CLI with the YAML
// language host: one PE → up → 100 acknowledged writes → image change → preview shows one replace (the
// executable) and no volume step → up keeps every write, generation + 1, lastCommit in the outputs →
// destroy keeps the volume. Bad input fails at preview, naming the field.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, volumeExists } from "../support/harness";
import { freePort, mustPulumi, outsideFolder, previewJson, pulumi, readmeBlock, stackOutputs } from "../support/userProject";
import {
  expectedSessions,
  buildPluginPackage,
  languageEnv,
  projectWithPackage,
  putSessions,
  sessionImageIds,
  sessionsOf,
  workloadVersion,
} from "../support/pluginPackage";

const PE = `it-yaml-${process.pid}`;
const STACK = "dev";

/** The README's YAML program, with the test's own PE id (PEs share the machine's engine). */
const program = (peId: string) => {
  const text = readmeBlock("yaml-program");
  expect(text).toContain("    properties:\n");
  return text.replace("    properties:\n", `    properties:\n      peId: ${peId}\n`);
};

type Outputs = { peId: string; generation: number; executableId: string; volumeName: string; lastCommit: { seq: number; at: string; bytes: number } | null };

describe("a YAML program: reseat's plugin package", () => {
  let pkg: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  let images: { v1: string; v2: string };
  let first: Outputs;

  beforeAll(async () => {
    await cleanup([PE]);
    [pkg, images, port] = await Promise.all([buildPluginPackage(), sessionImageIds(), freePort()]);
    dir = await projectWithPackage(pkg, "yaml", { "Pulumi.yaml": program(PE) });
    env = languageEnv(dir, "yaml");
  });
  afterAll(async () => {
    await cleanup([PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
  });

  it("add-to-project points the project at the package; nothing else is left in the folder", () => {
    expect(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")).toContain(`packages:\n  reseat: ${pkg}\n`);
    expect(fs.readdirSync(dir).sort()).toEqual([".pulumi-state", "Pulumi.yaml"]);
  });

  it("up: the PE runs; 100 writes are acknowledged", async () => {
    await mustPulumi(dir, ["stack", "init", STACK], env);
    await mustPulumi(dir, ["config", "set", "image", images.v1], env);
    await mustPulumi(dir, ["config", "set", "port", String(port)], env);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    first = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(first.peId).toBe(PE);
    expect(first.generation).toBe(1);
    expect(await volumeExists(first.volumeName)).toBe(true);
    expect(await putSessions(`http://127.0.0.1:${port}`, 100)).toBe(100);
  });

  it("an image change: preview shows exactly one replace, the executable, and no volume step", async () => {
    await mustPulumi(dir, ["config", "set", "image", images.v2], env);
    const preview = await previewJson(dir, STACK, env);
    expect(preview.changeSummary.replace).toBe(1);
    const changed = preview.steps.filter((s) => s.op !== "same");
    expect(changed.map((s) => s.type)).toEqual(["reseat:index:Executable"]);
    expect(preview.steps.filter((s) => s.type === "reseat:index:StateVolume")).toEqual([]);
  });

  it("up replaces the executable on the kept volume: every write kept, generation + 1, lastCommit in the outputs", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    const after = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(after.generation).toBe(first.generation + 1);
    expect(after.volumeName).toBe(first.volumeName);
    expect(after.executableId).not.toBe(first.executableId);
    expect(await workloadVersion(`http://127.0.0.1:${port}`)).toBe("v2");
    expect(await sessionsOf(`http://127.0.0.1:${port}`)).toEqual(expectedSessions(100));
    // The old executable's final commit (at its graceful stop) holds all 100 writes.
    expect(after.lastCommit?.seq).toBeGreaterThanOrEqual(100);
  });

  it("bad input fails at preview, naming the field, and creates nothing", async () => {
    const bad = await projectWithPackage(pkg, "yaml", {
      "Pulumi.yaml": program(`${PE}-bad`).replace("commitInterval: 30s", "commitInterval: soon"),
    });
    const badEnv = languageEnv(bad, "yaml");
    await mustPulumi(bad, ["stack", "init", STACK], badEnv);
    await mustPulumi(bad, ["config", "set", "image", images.v1], badEnv);
    await mustPulumi(bad, ["config", "set", "port", String(port)], badEnv);
    const preview = await pulumi(bad, ["preview"], badEnv);
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toMatch(/commitInterval: expected a duration/);
    expect(await containersOf(`${PE}-bad`)).toEqual([]);
    expect(await volumeExists(`reseat-${PE}-bad-state`)).toBe(false);
    fs.rmSync(bad, { recursive: true, force: true });
  });

  it("destroy removes the executable and keeps the volume", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
    expect(await containersOf(PE)).toEqual([]);
    expect(await volumeExists(first.volumeName)).toBe(true);
  });
});

describe("YAML: a group and a secret through the plugin package; the package installed from its tarball", () => {
  const GROUP = `itpg${process.pid % 100000}`;
  const SECRET_PE = `it-ysec-${process.pid}`;
  const SECRET = `s3cret-${process.pid}-${Date.now().toString(36)}`;
  // Two ports per run, away from the other tests' ranges.
  const BASE_PORT = 16000 + (process.pid % 100) * 10;
  const groupMembers = [`${GROUP}-0`, `${GROUP}-1`];
  let pkg: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const groupProgram = (secretPort: number) => `name: yaml-group-user
runtime: yaml
resources:
  ${GROUP}:
    type: reseat:index:ProcessingElementGroup
    properties:
      replicas: 2
      template:
        image: reseat-demo-workload:v1
        network: host
        env: { PORT: "{{ordinal + ${BASE_PORT}}}" }
        persistentStore: { kind: none }
        readiness: { httpGet: { port: "{{ordinal + ${BASE_PORT}}}", path: /healthz }, timeout: 30s }
      rollout: { maxUnavailable: 1 }
  withSecret:
    type: reseat:index:ProcessingElement
    properties:
      peId: ${SECRET_PE}
      image: reseat-demo-workload:v1
      network: host
      env:
        PORT: "${secretPort}"
        TOKEN:
          fn::secret: ${SECRET}
      persistentStore: { kind: none }
outputs:
  members: \${${GROUP}.memberOutputs}
  secretPe: \${withSecret.generation}
`;

  beforeAll(async () => {
    await cleanup([...groupMembers, SECRET_PE]);
    pkg = await buildPluginPackage("--tarball");
    dir = await projectWithPackage(pkg, "yaml", { "Pulumi.yaml": groupProgram(await freePort()) });
    env = languageEnv(dir, "yaml");
    await mustPulumi(dir, ["stack", "init", STACK], env);
  });
  afterAll(async () => {
    await cleanup([...groupMembers, SECRET_PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
  });

  it("a group of 2 and a PE with a secret env value: both created; the secret is in neither the state nor the engine's labels", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    const outputs = await stackOutputs(dir, STACK, env);
    expect((outputs.members as { peId: string; generation: number }[]).map((m) => [m.peId, m.generation])).toEqual(groupMembers.map((id) => [id, 1]));
    expect(outputs.secretPe).toBe(1);
    expect((await mustPulumi(dir, ["stack", "export"], env)).stdout).not.toContain(SECRET);
    const [container] = await containersOf(SECRET_PE, false);
    expect(container).toBeDefined();
    expect(JSON.stringify(container!.Labels)).not.toContain(SECRET);
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
    for (const id of [...groupMembers, SECRET_PE]) expect(await containersOf(id)).toEqual([]);
  });

  it("the tarball installs as a plugin (pulumi plugin install --file): a project names reseat without a path", async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(pkg, "schema.json"), "utf8")) as { version: string }).version;
    const tarball = fs.readdirSync(path.dirname(pkg)).find((f) => f.startsWith(`pulumi-resource-reseat-v${version}-linux-`) && f.endsWith(".tar.gz"));
    expect(tarball).toBeDefined();
    const home = outsideFolder("pulumi-home");
    const project = outsideFolder("yaml-installed-user");
    const installedEnv = languageEnv(project, "yaml", { PULUMI_HOME: home });
    try {
      await mustPulumi(project, ["plugin", "install", "resource", "reseat", version, "--file", path.join(path.dirname(pkg), tarball!)], installedEnv);
      fs.writeFileSync(
        path.join(project, "Pulumi.yaml"),
        `name: yaml-installed-user\nruntime: yaml\nresources:\n  orders:\n    type: reseat:index:ProcessingElement\n    properties:\n      peId: ${PE}-inst\n      image: reseat-demo-workload:v1\n`,
      );
      await mustPulumi(project, ["stack", "init", STACK], installedEnv);
      const preview = await previewJson(project, STACK, installedEnv);
      expect(preview.steps.filter((s) => s.op === "create").map((s) => s.type)).toContain("reseat:index:ProcessingElement");
      expect(await containersOf(`${PE}-inst`)).toEqual([]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
