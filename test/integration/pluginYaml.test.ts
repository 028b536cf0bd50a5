// Issue 20: YAML programs use reseat as a plugin package (fresh folders with nothing of this checkout but the
// package, `add-to-project`, plain `pulumi` with the YAML host): the README's program through a PE's whole
// lifecycle (test/support/readmeProgramSuite.ts); bad input fails at preview naming the field; a group and a
// secret; the package's tarball installed as a plugin.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, volumeExists } from "../support/harness";
import { freePort, mustPulumi, outsideFolder, previewJson, pulumi, readmeBlock, stackOutputs } from "../support/userProject";
import { buildPluginPackage, languageEnv, projectWithPackage } from "../support/pluginPackage";
import { readmeProgramSuite } from "../support/readmeProgramSuite";

const PE = `it-yaml-${process.pid}`;
const STACK = "dev";

/** The README's YAML program, with the test's own PE id (PEs share the machine's engine). */
const program = (peId: string) => {
  const text = readmeBlock("yaml-program");
  expect(text).toContain("    properties:\n");
  return text.replace("    properties:\n", `    properties:\n      peId: ${peId}\n`);
};

let pkg: string;
beforeAll(async () => {
  pkg = await buildPluginPackage("--tarball");
});
afterAll(() => {
  if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
});

readmeProgramSuite(
  "yaml",
  PE,
  () => pkg,
  (peId) => ({ "Pulumi.yaml": program(peId) }),
);

describe("a YAML program with bad input", () => {
  it("bad input fails at preview, naming the field, and creates nothing", async () => {
    const port = await freePort();
    const bad = await projectWithPackage(pkg, "yaml", {
      "Pulumi.yaml": program(`${PE}-bad`).replace("commitInterval: 30s", "commitInterval: soon"),
    });
    const badEnv = languageEnv(bad, "yaml");
    await mustPulumi(bad, ["stack", "init", STACK], badEnv);
    await mustPulumi(bad, ["config", "set", "image", "reseat-session-workload:v1"], badEnv);
    await mustPulumi(bad, ["config", "set", "port", String(port)], badEnv);
    const preview = await pulumi(bad, ["preview"], badEnv);
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toMatch(/commitInterval: expected a duration/);
    expect(await containersOf(`${PE}-bad`)).toEqual([]);
    expect(await volumeExists(`reseat-${PE}-bad-state`)).toBe(false);
    fs.rmSync(bad, { recursive: true, force: true });
  });
});

describe("YAML: a group and a secret through the plugin package; the package installed from its tarball", () => {
  const GROUP = `itpg${process.pid % 100000}`;
  const SECRET_PE = `it-ysec-${process.pid}`;
  const SECRET = `s3cret-${process.pid}-${Date.now().toString(36)}`;
  // Two ports per run, away from the other tests' ranges.
  const BASE_PORT = 16000 + (process.pid % 100) * 10;
  const groupMembers = [`${GROUP}-0`, `${GROUP}-1`];
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
    dir = await projectWithPackage(pkg, "yaml", { "Pulumi.yaml": groupProgram(await freePort()) });
    env = languageEnv(dir, "yaml");
    await mustPulumi(dir, ["stack", "init", STACK], env);
  });
  afterAll(async () => {
    await cleanup([...groupMembers, SECRET_PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
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
