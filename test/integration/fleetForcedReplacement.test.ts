// Issue 19 for fleets: `pulumi up --replace <the Fleet's URN>` and a `replacementTrigger` change make
// Pulumi replace the one Fleet resource. Every member is rolled to the new resource (maxUnavailable at a
// time), and the replaced Fleet's delete then removes nothing that serves: afterwards each member runs
// exactly one executable, one generation newer, with its state. Plain `pulumi`, real Docker.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanup, httpJson, runningOf } from "../support/harness";
import { demoGroupSpec, watchAvailability } from "../support/group";
import { mustPulumi, pulumi, stackExport, stackOutputs, userEnv } from "../support/userProject";

const FLEET = `itff${process.pid % 100000}`;
const BASE_PORT = 17000 + (process.pid % 100) * 10;
const REPLICAS = 3;
const STACK = "dev";
const ids = Array.from({ length: REPLICAS }, (_, o) => `${FLEET}-${o}`);
type StateView = { version: string; generation: number; lines: string[] };
type Member = { ordinal: number; peId: string; executableId: string; generation: number };

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElementFleet } = require("reseat/components");
const config = new pulumi.Config();
const spec = config.requireObject("fleet");
const fleet = new ProcessingElementFleet(spec.name, spec, { replacementTrigger: config.get("trigger") || "t0" });
exports.members = fleet.members;
`;

describe("forced replacements of a Fleet keep every member serving", () => {
  let dir: string;
  let members: Member[];
  const up = (...extra: string[]) => mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK, ...extra]);
  const outputs = async () => ((await stackOutputs(dir, STACK)).members as Member[]).sort((a, b) => a.ordinal - b.ordinal);

  async function expectRolledOnce(): Promise<void> {
    const after = await outputs();
    for (const member of after) {
      const before = members.find((m) => m.ordinal === member.ordinal)!;
      expect(member.generation).toBe(before.generation + 1);
      expect((await runningOf(member.peId)).map((c) => c.Id)).toEqual([member.executableId]);
      expect((await httpJson<StateView>(BASE_PORT + member.ordinal, "/state")).lines).toEqual([`m${member.ordinal}`]);
    }
    const gate = await pulumi(dir, ["preview", "--refresh", "--expect-no-changes", "--stack", STACK]);
    expect(gate.code, gate.stdout.slice(-3000) + gate.stderr.slice(-2000)).toBe(0);
    members = after;
  }

  beforeAll(async () => {
    await cleanup(ids);
    dir = path.join(ROOT, ".work", `fleet-forced-${process.pid}-${Date.now().toString(36)}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: fforced\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK], userEnv(dir));
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "fleet", JSON.stringify(demoGroupSpec(FLEET, BASE_PORT, REPLICAS, { maxUnavailable: 2 }))]);
  });
  afterAll(async () => {
    if (dir) await pulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]).catch(() => undefined);
    await cleanup(ids);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("up creates the members; each writes its state", async () => {
    await up();
    members = await outputs();
    expect(members.map((m) => m.peId)).toEqual(ids);
    for (const m of members) await httpJson(BASE_PORT + m.ordinal, `/append?line=m${m.ordinal}`, "POST");
  });

  it("pulumi up --replace <the Fleet's URN>: every member rolled once (at most 2 down at a time), none left without its executable", async () => {
    const doc = JSON.parse(await stackExport(dir, STACK)) as { deployment: { resources: { urn: string; type: string }[] } };
    const urn = doc.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/reseat:Fleet")!.urn;
    const watch = await watchAvailability(ids);
    await up("--replace", urn);
    const seen = await watch.stop();
    expect(seen.maxUnavailable).toBeLessThanOrEqual(2);
    await expectRolledOnce();
  });

  it("a replacementTrigger change: the same", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "trigger", "t1"]);
    await up();
    await expectRolledOnce();
  });
});
