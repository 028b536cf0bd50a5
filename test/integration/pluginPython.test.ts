// Issue 20: Python programs use reseat as a plugin package. A fresh folder with nothing of this checkout
// but the package (scripts/plugin.sh) and the user's own virtualenv, `add-to-project` (the generated
// Python SDK installed, the plugin named in Pulumi.yaml), then the plain `pulumi` CLI with the Python
// language host.
// - One PE (the README's program) through its whole lifecycle (test/support/readmeProgramSuite.ts).
// - A fleet of 5: an image change rolls all 5 with maxUnavailable 2; a bad field fails at preview, naming it.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, volumeExists } from "../support/harness";
import { watchAvailability } from "../support/group";
import { mustPulumi, pulumi, readmeBlock, stackOutputs } from "../support/userProject";
import { buildPluginPackage, languageEnv, projectWithPackage } from "../support/pluginPackage";
import { readmeProgramSuite } from "../support/readmeProgramSuite";

const PE = `it-py-${process.pid}`;
const FLEET = `itpf${process.pid % 100000}`;
const REPLICAS = 5;
// Five ports per run, away from the fleet and group tests' ranges (18000+, 19000+).
const BASE_PORT = 17000 + (process.pid % 100) * 10;
const STACK = "dev";
const members = () => Array.from({ length: REPLICAS }, (_, o) => `${FLEET}-${o}`);
const PROJECT = (name: string) => `name: ${name}\nruntime: python\n`;

/** The README's Python program, with the test's own PE id (PEs share the machine's engine). */
const peProgram = (peId: string) => {
  const text = readmeBlock("python-program");
  expect(text).toContain('reseat.ProcessingElement("orders",');
  return text.replace('reseat.ProcessingElement("orders",', `reseat.ProcessingElement("orders", pe_id="${peId}",`);
};

const fleetProgram = (name: string) => `import pulumi
import pulumi_reseat as reseat

config = pulumi.Config()
template = {
    "image": config.require("image"),
    "network": "host",
    "env": {"PORT": "{{ordinal + ${BASE_PORT}}}"},
    "commit_interval": "5s",
    "stop": {"grace_seconds": 5},
    "persistent_store": {"kind": "none"},
    "readiness": {"http_get": {"port": "{{ordinal + ${BASE_PORT}}}", "path": "/healthz"}, "timeout": "20s"},
}
bad_field = config.get("badField")
if bad_field:
    template[bad_field] = "1s"
fleet = reseat.ProcessingElementFleet("${name}", replicas=${REPLICAS}, template=template, rollout={"max_unavailable": 2})
pulumi.export("members", fleet.members)
pulumi.export("updatedReplicas", fleet.updated_replicas)
`;

type Member = { peId: string; ordinal: number; generation: number; executableId: string; imageRef: string; updated: boolean };

let pkg: string;
beforeAll(async () => {
  pkg = await buildPluginPackage();
});
afterAll(() => {
  if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
});

readmeProgramSuite(
  "python",
  PE,
  () => pkg,
  (peId) => ({ "Pulumi.yaml": PROJECT("python-user"), "__main__.py": peProgram(peId) }),
);

describe("a Python program: a fleet of 5 through reseat's plugin package", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let created: Member[];

  beforeAll(async () => {
    await cleanup(members());
    dir = await projectWithPackage(pkg, "python", { "Pulumi.yaml": PROJECT("python-fleet-user"), "__main__.py": fleetProgram(FLEET) });
    env = languageEnv(dir, "python");
    await mustPulumi(dir, ["stack", "init", STACK], env);
  });
  afterAll(async () => {
    await cleanup(members());
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("add-to-project installed the generated SDK into the project's own venv", () => {
    const where = execFileSync(path.join(dir, "venv", "bin", "python3"), ["-c", "import pulumi_reseat, os; print(os.path.dirname(pulumi_reseat.__file__))"])
      .toString()
      .trim();
    expect(where.startsWith(path.join(dir, "venv"))).toBe(true);
  });

  it("up creates 5 members, each on its own volume", async () => {
    await mustPulumi(dir, ["config", "set", "image", "reseat-demo-workload:v1"], env);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    created = (await stackOutputs(dir, STACK, env)).members as Member[];
    expect(created.map((m) => m.peId)).toEqual(members());
    expect(created.every((m) => m.generation === 1 && m.updated)).toBe(true);
    for (const id of members()) expect(await volumeExists(`reseat-${id}-state`)).toBe(true);
  });

  it("a bad field in the template fails at preview, naming it; nothing changes", async () => {
    await mustPulumi(dir, ["config", "set", "badField", "comitInterval"], env);
    const preview = await pulumi(dir, ["preview"], env);
    await mustPulumi(dir, ["config", "rm", "badField"], env);
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toMatch(/template\.comitInterval/);
    for (const m of created) expect((await containersOf(m.peId, false)).map((c) => c.Id)).toEqual([m.executableId]);
  });

  it("an image change rolls all 5, at most 2 down at once, highest ordinals first", async () => {
    await mustPulumi(dir, ["config", "set", "image", "reseat-demo-workload:v2"], env);
    const watch = await watchAvailability(members());
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    const seen = await watch.stop();
    expect(seen.maxUnavailable).toBeGreaterThanOrEqual(1);
    expect(seen.maxUnavailable).toBeLessThanOrEqual(2);
    expect(seen.stopOrder.slice(0, 2).sort()).toEqual([`${FLEET}-3`, `${FLEET}-4`]);
    const after = (await stackOutputs(dir, STACK, env)).members as Member[];
    expect((await stackOutputs(dir, STACK, env)).updatedReplicas).toBe(REPLICAS);
    for (const member of after) {
      expect(member.generation).toBe(2);
      expect(member.updated).toBe(true);
      expect(member.imageRef).toBe("reseat-demo-workload:v2");
      expect(await containersOf(member.peId, false)).toHaveLength(1);
    }
  });

  it("destroy keeps every member's volume", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
    for (const id of members()) {
      expect(await containersOf(id)).toEqual([]);
      expect(await volumeExists(`reseat-${id}-state`)).toBe(true);
    }
  });
});
