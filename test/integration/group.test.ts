// Issue: processing-element groups with rolling replacement. Real reseat CLI (Automation API on the
// real Pulumi CLI) running stacks/groups.js, real Docker Engine; availability and order are observed
// independently, through Engine events only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, cleanup, containersOf, httpJson, makeProject, volumeExists } from "../support/harness";
import { DemoGroupOverrides, GroupOutputs, demoGroupSpec, groupCli, groupOutputs, mustGroup, setGroups, watchAvailability } from "../support/group";

const GROUP = `itg${process.pid % 100000}`;
// Ten ports per run, away from the other integration tests' ranges.
const BASE_PORT = 19000 + (process.pid % 100) * 10;
const MAX_MEMBERS = 7;
const REPLICAS = 6; // the failing-rollout case: 5, 4, 3 updated, 2 reverted, 1 and 0 untouched
const ids = (n: number) => Array.from({ length: n }, (_, o) => `${GROUP}-${o}`);
const port = (ordinal: number) => BASE_PORT + ordinal;
type StateView = { version: string; generation: number; lines: string[] };

function group(overrides: DemoGroupOverrides = {}) {
  return demoGroupSpec(GROUP, BASE_PORT, REPLICAS, overrides);
}

async function stateOf(ordinal: number): Promise<StateView> {
  return httpJson<StateView>(port(ordinal), "/state");
}

function byOrdinal(outputs: GroupOutputs): Map<number, GroupOutputs["members"][number]> {
  return new Map(outputs.members.map((m) => [m.ordinal, m]));
}

/** Executable steps (not same/read) per member name, e.g. {"itg1-4-executable": ["delete-replaced", "replace", …]}. */
function executableSteps(steps: { op: string; urn: string; type: string }[] = []): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const step of steps) {
    if (step.op === "same" || step.op === "read" || !step.type.includes("reseat:")) continue;
    const name = step.urn.split("::").at(-1)!;
    result.set(name, [...(result.get(name) ?? []), step.op]);
  }
  return result;
}

describe("a processing-element group rolled out by pulumi up", () => {
  let project: Project;
  let current: GroupOutputs;

  beforeAll(async () => {
    await cleanup(ids(MAX_MEMBERS));
    project = makeProject("group", []);
    setGroups(project, [group()]);
  });
  afterAll(async () => {
    await cleanup(ids(MAX_MEMBERS));
  });

  it("up creates 6 members <group>-<ordinal>, each with its own volume; each writes its own state", async () => {
    current = groupOutputs(await mustGroup(project, "up"), GROUP);
    expect(current.members.map((m) => m.peId)).toEqual(ids(REPLICAS));
    expect(current.members.map((m) => m.volumeName)).toEqual(ids(REPLICAS).map((id) => `reseat-${id}-state`));
    expect(current.members.every((m) => m.generation === 1 && m.updated)).toBe(true);
    expect(current.updatedReplicas).toBe(REPLICAS);
    for (let o = 0; o < REPLICAS; o++) {
      for (const line of [`m${o}-a`, `m${o}-b`]) await httpJson(port(o), `/append?line=${line}`, "POST");
      expect((await stateOf(o)).lines).toEqual([`m${o}-a`, `m${o}-b`]);
    }
  });

  it("an image change previews as one executable replace per member, nothing else", async () => {
    setGroups(project, [group({ image: "reseat-demo-workload:v2" })]);
    const preview = await mustGroup(project, "preview");
    const steps = executableSteps(preview.doc.steps);
    expect([...steps.keys()].sort()).toEqual(ids(REPLICAS).map((id) => `${id}-executable`));
    for (const ops of steps.values()) expect(ops.every((op) => ["replace", "create-replacement", "delete-replaced"].includes(op))).toBe(true);
    expect(preview.doc.changeSummary?.replace).toBe(REPLICAS);
    expect(preview.stderr).toContain(`replacing member ${GROUP}-5 (1 of 6): image reseat-demo-workload:v1 -> reseat-demo-workload:v2`);
  });

  it("maxUnavailable 1: never more than one member without a running executable, highest ordinal first, state intact", async () => {
    const watch = await watchAvailability(ids(REPLICAS));
    const result = await mustGroup(project, "up");
    const seen = await watch.stop();
    const after = groupOutputs(result, GROUP);

    expect(seen.maxUnavailable).toBe(1);
    expect(seen.stopOrder).toEqual(ids(REPLICAS).reverse());
    expect([...seen.started].sort()).toEqual(ids(REPLICAS));
    const before = byOrdinal(current);
    for (const member of after.members) {
      expect(member.generation).toBe(before.get(member.ordinal)!.generation + 1);
      expect(member.executableId).not.toBe(before.get(member.ordinal)!.executableId);
      expect(member.imageRef).toBe("reseat-demo-workload:v2");
      expect(member.updated).toBe(true);
      const state = await stateOf(member.ordinal);
      expect(state.version).toBe("v2");
      expect(state.lines).toEqual([`m${member.ordinal}-a`, `m${member.ordinal}-b`]);
    }
    // Progress per member, in rollout order.
    const progress = ids(REPLICAS)
      .reverse()
      .map((id, i) => result.stderr.indexOf(`replacing member ${id} (${i + 1} of ${REPLICAS})`));
    expect(progress.every((at) => at >= 0)).toBe(true);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    current = after;
  });

  it("maxUnavailable 2: a change of maxUnavailable alone touches nothing; then at most two members down at once", async () => {
    setGroups(project, [group({ image: "reseat-demo-workload:v2", maxUnavailable: 2 })]);
    expect(executableSteps((await mustGroup(project, "preview")).doc.steps).size).toBe(0);
    setGroups(project, [group({ image: "reseat-demo-workload:v1", maxUnavailable: 2 })]);
    const watch = await watchAvailability(ids(REPLICAS));
    const after = groupOutputs(await mustGroup(project, "up"), GROUP);
    const seen = await watch.stop();
    expect(seen.maxUnavailable).toBeGreaterThanOrEqual(1);
    expect(seen.maxUnavailable).toBeLessThanOrEqual(2);
    expect(after.members.every((m) => m.imageRef === "reseat-demo-workload:v1" && m.updated)).toBe(true);
    for (let o = 0; o < REPLICAS; o++) expect((await stateOf(o)).lines).toEqual([`m${o}-a`, `m${o}-b`]);
    current = after;
  });

  it("partition 3: only members 3, 4 and 5 take the new template; 0-2 keep what they run", async () => {
    setGroups(project, [group({ image: "reseat-demo-workload:v2", partition: 3 })]);
    const preview = await mustGroup(project, "preview");
    expect([...executableSteps(preview.doc.steps).keys()].sort()).toEqual([`${GROUP}-3-executable`, `${GROUP}-4-executable`, `${GROUP}-5-executable`]);

    const watch = await watchAvailability(ids(REPLICAS));
    const after = groupOutputs(await mustGroup(project, "up"), GROUP);
    const seen = await watch.stop();
    expect(seen.stopOrder).toEqual([`${GROUP}-5`, `${GROUP}-4`, `${GROUP}-3`]);
    const before = byOrdinal(current);
    for (const member of after.members) {
      const was = before.get(member.ordinal)!;
      if (member.ordinal >= 3) {
        expect(member.generation).toBe(was.generation + 1);
        expect((await stateOf(member.ordinal)).version).toBe("v2");
        expect(member.updated).toBe(true);
      } else {
        expect(member.executableId).toBe(was.executableId);
        expect(member.generation).toBe(was.generation);
        expect(member.imageRef).toBe("reseat-demo-workload:v1");
        expect((await stateOf(member.ordinal)).version).toBe("v1");
        expect(member.updated).toBe(false);
      }
    }
    expect(after.updatedReplicas).toBe(3);

    // Held members stay held on a re-run; lowering the partition rolls them, and only them.
    expect(executableSteps((await mustGroup(project, "preview")).doc.steps).size).toBe(0);
    setGroups(project, [group({ image: "reseat-demo-workload:v2", partition: 0 })]);
    const watch2 = await watchAvailability(ids(REPLICAS));
    const done = groupOutputs(await mustGroup(project, "up"), GROUP);
    const seen2 = await watch2.stop();
    expect(seen2.stopOrder).toEqual([`${GROUP}-2`, `${GROUP}-1`, `${GROUP}-0`]);
    expect(seen2.maxUnavailable).toBe(1);
    expect(done.updatedReplicas).toBe(REPLICAS);
    const mid = byOrdinal(after);
    for (const member of done.members) {
      if (member.ordinal >= 3) expect(member.executableId).toBe(mid.get(member.ordinal)!.executableId);
      expect((await stateOf(member.ordinal)).lines).toEqual([`m${member.ordinal}-a`, `m${member.ordinal}-b`]);
    }
    current = done;
  });

  it("a member that cannot start halts the rollout naming it; it is reverted and serving; members after it untouched; fixing the template converges", async () => {
    // Back to v1 first, so that the failing change is a v1 -> v2 rollout.
    setGroups(project, [group({ image: "reseat-demo-workload:v1" })]);
    const base = groupOutputs(await mustGroup(project, "up"), GROUP);
    const before = byOrdinal(base);

    // Member 2 of the new template exits at once (as a broken image would).
    const broken = ["node", "-e", "if ({{ordinal}} === 2) { console.error('member {{peId}} refuses to start'); process.exit(3) } require('/app/server.js')"];
    setGroups(project, [group({ image: "reseat-demo-workload:v2", command: broken })]);
    const watch = await watchAvailability(ids(REPLICAS));
    const failed = await groupCli(project, "up");
    const seen = await watch.stop();
    expect(failed.code).toBe(1);
    expect(failed.doc.ok).toBe(false);
    expect(failed.doc.error).toContain(`${GROUP}-2-executable`);
    expect(failed.doc.error).toMatch(new RegExp(`PE "${GROUP}-2" was reverted: the new executable reseat-${GROUP}-2-g\\d+`));
    expect(failed.doc.error).toMatch(/exited with code 3 before it was ready/);
    expect(failed.doc.error).toContain(`member ${GROUP}-2 refuses to start`); // the failed container's last log lines
    expect(seen.stopOrder).toEqual([`${GROUP}-5`, `${GROUP}-4`, `${GROUP}-3`, `${GROUP}-2`]);
    expect(seen.maxUnavailable).toBe(1);

    // Members replaced before the failure stay replaced; the failing member serves its previous
    // template again with its state; members after it were not touched.
    for (const o of [5, 4, 3]) expect((await stateOf(o)).version).toBe("v2");
    for (const o of [1, 0]) {
      const running = await containersOf(`${GROUP}-${o}`, false);
      expect(running.map((c) => c.Id)).toEqual([before.get(o)!.executableId]);
      expect((await stateOf(o)).version).toBe("v1");
    }
    expect(await containersOf(`${GROUP}-2`, false)).toHaveLength(1);
    expect((await stateOf(2)).version).toBe("v1");
    expect((await stateOf(2)).lines).toEqual(["m2-a", "m2-b"]);
    // Member 2 without a running executable: from its old executable's death to the revert's start.
    const m2 = seen.events.filter((e) => e.peId === `${GROUP}-2`).sort((a, b) => a.timeNano - b.timeNano);
    const firstDie = m2.find((e) => e.action === "die")!;
    const lastStart = [...m2].reverse().find((e) => e.action === "start")!;
    console.log(`member 2 without a running executable for ${Math.round((lastStart.timeNano - firstDie.timeNano) / 1e6)} ms (gap + failed start + revert)`);
    expect(lastStart.timeNano).toBeGreaterThan(firstDie.timeNano);

    // The fix: the template without the broken command. up converges; every member's state is intact.
    setGroups(project, [group({ image: "reseat-demo-workload:v2" })]);
    const fixed = groupOutputs(await mustGroup(project, "up"), GROUP);
    expect(fixed.updatedReplicas).toBe(REPLICAS);
    for (const member of fixed.members) {
      expect(member.imageRef).toBe("reseat-demo-workload:v2");
      const state = await stateOf(member.ordinal);
      expect(state.version).toBe("v2");
      expect(state.lines).toEqual([`m${member.ordinal}-a`, `m${member.ordinal}-b`]);
      expect(await containersOf(member.peId, false)).toHaveLength(1);
    }
    current = fixed;
  });

  it("an image that does not exist fails at the first member's check, before anything is stopped", async () => {
    setGroups(project, [group({ image: "reseat-demo-workload:does-not-exist" })]);
    const watch = await watchAvailability(ids(REPLICAS));
    const failed = await groupCli(project, "up");
    const seen = await watch.stop();
    expect(failed.code).toBe(1);
    expect(failed.doc.error).toContain(`${GROUP}-${REPLICAS - 1}-executable`);
    expect(failed.doc.error).toContain('image "reseat-demo-workload:does-not-exist"');
    expect(seen.stopOrder).toEqual([]);
    for (const member of current.members) expect((await containersOf(member.peId, false)).map((c) => c.Id)).toEqual([member.executableId]);
    setGroups(project, [group({ image: "reseat-demo-workload:v2" })]);
  });

  it("scaling 6 -> 7 -> 4 creates or removes only the members beyond; the others are untouched; volumes kept", async () => {
    setGroups(project, [group({ image: "reseat-demo-workload:v2", replicas: 7 })]);
    const up7 = await mustGroup(project, "up");
    const seven = groupOutputs(up7, GROUP);
    const before = byOrdinal(current);
    expect(seven.members.map((m) => m.peId)).toEqual(ids(7));
    for (const member of seven.members) {
      if (member.ordinal < REPLICAS) {
        expect(member.executableId).toBe(before.get(member.ordinal)!.executableId);
        expect(member.generation).toBe(before.get(member.ordinal)!.generation);
      } else {
        expect(member.generation).toBe(1);
      }
    }
    expect([...executableSteps(up7.doc.steps).entries()].filter(([, ops]) => ops.some((op) => op !== "create"))).toEqual([]);
    await httpJson(port(6), "/append?line=m6-a", "POST");

    setGroups(project, [group({ image: "reseat-demo-workload:v2", replicas: 4 })]);
    const up4 = await mustGroup(project, "up");
    const four = groupOutputs(up4, GROUP);
    expect(four.members.map((m) => m.peId)).toEqual(ids(4));
    for (const member of four.members) {
      expect(member.executableId).toBe(before.get(member.ordinal)!.executableId);
      expect(member.generation).toBe(before.get(member.ordinal)!.generation);
    }
    expect(up4.stderr).toContain(`removing members ${GROUP}-4, ${GROUP}-5, ${GROUP}-6 (scale to 4); their state volumes are kept`);
    for (const o of [4, 5, 6]) {
      expect(await containersOf(`${GROUP}-${o}`)).toHaveLength(0);
      expect(await volumeExists(`reseat-${GROUP}-${o}-state`)).toBe(true);
    }

    // Scaling back up resumes a removed member from its kept volume.
    setGroups(project, [group({ image: "reseat-demo-workload:v2", replicas: 7 })]);
    const back = byOrdinal(groupOutputs(await mustGroup(project, "up"), GROUP));
    expect(back.get(6)!.generation).toBe(2);
    expect((await stateOf(6)).lines).toEqual(["m6-a"]);
  });

  it("an invalid group spec fails preview with every bad field named, and creates nothing", async () => {
    const bad = makeProject("group-invalid", []);
    const badGroup = `${GROUP}x`;
    setGroups(bad, [
      { ...group(), name: badGroup, template: { ...group().template, volume: { name: "shared" } }, rollout: { maxUnavailable: 0 } },
      { ...group(), name: badGroup },
    ]);
    const result = await groupCli(bad, "preview");
    expect(result.code).toBe(1);
    expect(result.doc.error).toContain(`invalid processing element group "${badGroup}"`);
    expect(result.doc.error).toContain("rollout.maxUnavailable: expected at least 1 member");
    expect(result.doc.error).toContain('template.volume.name: expected a distinct state volume per member: members 0 and 1 both use "shared"');
    expect(result.doc.error).toContain(`name: expected a unique group name: groups[0] and groups[1] are both "${badGroup}"`);
    expect(await containersOf(`${badGroup}-0`)).toHaveLength(0);
  });
});
