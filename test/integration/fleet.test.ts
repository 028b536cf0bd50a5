// Issue 15: a fleet — N processing elements in ONE Pulumi resource that rolls its members itself.
// Real reseat CLI (Automation API on the real Pulumi CLI) running stacks/groups.js, real Docker
// Engine; availability and order observed independently through Engine events; state read back from
// each member's workload and from `pulumi stack export`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, checkpointText, cleanup, containersOf, docker, httpJson, makeProject, volumeExists } from "../support/harness";
import {
  DemoGroupOverrides,
  FleetOutputs,
  demoGroupSpec,
  fleetOutputs,
  groupCli,
  mustGroup,
  recordedFleetMembers,
  setFleets,
  watchAvailability,
} from "../support/group";

const FLEET = `itf${process.pid % 100000}`;
// Ten ports per run, away from the group test's (19000+) and the ephemeral range.
const BASE_PORT = 18000 + (process.pid % 100) * 10;
const REPLICAS = 4;
const ids = (n: number) => Array.from({ length: n }, (_, o) => `${FLEET}-${o}`);
const port = (ordinal: number) => BASE_PORT + ordinal;
type StateView = { version: string; generation: number; lines: string[] };

function fleet(overrides: DemoGroupOverrides = {}) {
  return demoGroupSpec(FLEET, BASE_PORT, REPLICAS, overrides);
}

const stateOf = (ordinal: number) => httpJson<StateView>(port(ordinal), "/state");
const byOrdinal = (outputs: FleetOutputs) => new Map(outputs.members.map((m) => [m.ordinal, m]));

/** Every resource of the stack's checkpoint, by type. */
function resourceTypes(project: Project): string[] {
  const doc = JSON.parse(checkpointText(project)) as { checkpoint: { latest: { resources: { type: string }[] } } };
  return doc.checkpoint.latest.resources.map((r) => r.type);
}

describe("a fleet: one resource that rolls its members itself", () => {
  let project: Project;
  let current: FleetOutputs;

  beforeAll(async () => {
    await cleanup(ids(REPLICAS));
    project = makeProject("fleet", []);
    setFleets(project, [fleet()]);
  });
  afterAll(async () => {
    await cleanup(ids(REPLICAS));
  });

  it("up creates 4 members, each with its own kept volume, all in one Pulumi resource; each writes its own state", async () => {
    current = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(current.members.map((m) => m.peId)).toEqual(ids(REPLICAS));
    expect(current.members.every((m) => m.generation === 1 && m.updated && m.imageRef === "reseat-demo-workload:v1")).toBe(true);
    expect(current.updatedReplicas).toBe(REPLICAS);
    const reseatTypes = resourceTypes(project).filter((t) => t.includes("reseat"));
    expect(reseatTypes.sort()).toEqual(["pulumi-nodejs:dynamic/reseat:Fleet", "reseat:index:ProcessingElementFleet"]);
    for (let o = 0; o < REPLICAS; o++) {
      expect(await volumeExists(`reseat-${FLEET}-${o}-state`)).toBe(true);
      for (const line of [`m${o}-a`, `m${o}-b`]) await httpJson(port(o), `/append?line=${line}`, "POST");
      expect((await stateOf(o)).lines).toEqual([`m${o}-a`, `m${o}-b`]);
    }
  });

  it("preview of an image change lists every member in rollout order and touches nothing", async () => {
    setFleets(project, [fleet({ image: "reseat-demo-workload:v2", maxUnavailable: 2 })]);
    const preview = await mustGroup(project, "preview");
    const lines = ids(REPLICAS)
      .reverse()
      .map((id, i) => preview.stderr.indexOf(`replacing member ${id} (${i + 1} of ${REPLICAS}): image reseat-demo-workload:v1 -> reseat-demo-workload:v2`));
    expect(lines.every((at) => at >= 0)).toBe(true);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
    expect(preview.doc.changeSummary?.update).toBe(1);
    for (const member of current.members) expect((await containersOf(member.peId, false)).map((c) => c.Id)).toEqual([member.executableId]);
  });

  it("maxUnavailable 2: at most two members down at once, highest ordinals first; same volumes, state intact, generation + 1", async () => {
    const watch = await watchAvailability(ids(REPLICAS));
    const after = fleetOutputs(await mustGroup(project, "up"), FLEET);
    const seen = await watch.stop();
    expect(seen.maxUnavailable).toBeGreaterThanOrEqual(1);
    expect(seen.maxUnavailable).toBeLessThanOrEqual(2);
    expect(seen.stopOrder.slice(0, 2).sort()).toEqual([`${FLEET}-2`, `${FLEET}-3`]);
    expect(seen.stopOrder.slice(2).sort()).toEqual([`${FLEET}-0`, `${FLEET}-1`]);
    const before = byOrdinal(current);
    for (const member of after.members) {
      expect(member.generation).toBe(before.get(member.ordinal)!.generation + 1);
      expect(member.imageRef).toBe("reseat-demo-workload:v2");
      expect(member.updated).toBe(true);
      const state = await stateOf(member.ordinal);
      expect(state.version).toBe("v2");
      expect(state.lines).toEqual([`m${member.ordinal}-a`, `m${member.ordinal}-b`]);
      expect(await containersOf(member.peId, false)).toHaveLength(1);
    }
    current = after;
    // Level-triggered: nothing changed, nothing is touched.
    const again = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(again.members.map((m) => m.executableId)).toEqual(current.members.map((m) => m.executableId));
  });

  it("a member that cannot start stops the rollout naming it; it is reverted and serving; the one after it untouched; state records it; the fix converges", async () => {
    // Member 1 of the new template exits at once (as a broken image would). Order: 3, 2, 1, 0.
    const broken = ["node", "-e", "if ({{ordinal}} === 1) { console.error('member {{peId}} refuses to start'); process.exit(3) } require('/app/server.js')"];
    setFleets(project, [fleet({ image: "reseat-demo-workload:v1", command: broken })]);
    const watch = await watchAvailability(ids(REPLICAS));
    const failed = await groupCli(project, "up");
    const seen = await watch.stop();
    expect(failed.code).toBe(1);
    expect(failed.doc.error).toContain(`fleet "${FLEET}": the rollout stopped at ${FLEET}-1`);
    expect(failed.doc.error).toMatch(/exited with code 3 before it was ready/);
    expect(failed.doc.error).toContain(`member ${FLEET}-1 refuses to start`);
    expect(failed.doc.error).toContain(`not begun (running what they ran before): ${FLEET}-0`);
    expect(seen.stopOrder).toEqual([`${FLEET}-3`, `${FLEET}-2`, `${FLEET}-1`]);
    expect(seen.maxUnavailable).toBe(1);
    for (const o of [3, 2]) expect((await stateOf(o)).version).toBe("v1");
    // Member 1 serves its previous spec again with its state; member 0 was never touched.
    expect((await stateOf(1)).version).toBe("v2");
    expect((await stateOf(1)).lines).toEqual(["m1-a", "m1-b"]);
    expect((await containersOf(`${FLEET}-0`, false)).map((c) => c.Id)).toEqual([current.members[0]!.executableId]);
    // Pulumi recorded the members as they run now (a partial update), not the previous deployment.
    const members = recordedFleetMembers(checkpointText(project));
    expect(members.map((m) => [m.ordinal, m.imageRef === "reseat-demo-workload:v1" ? "new" : "old", m.updated])).toEqual([
      [0, "old", false],
      [1, "old", false],
      [2, "new", true],
      [3, "new", true],
    ]);
    expect(members[1]!.reverted).toBe(true);

    // The fix: the template without the broken command. Members 3 and 2 already run it and are kept.
    setFleets(project, [fleet({ image: "reseat-demo-workload:v1" })]);
    const fixed = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(fixed.updatedReplicas).toBe(REPLICAS);
    for (const member of fixed.members) {
      const state = await stateOf(member.ordinal);
      expect(state.version).toBe("v1");
      expect(state.lines).toEqual([`m${member.ordinal}-a`, `m${member.ordinal}-b`]);
      expect(await containersOf(member.peId, false)).toHaveLength(1);
    }
    current = fixed;
  });

  it("an image that does not exist fails before anything is stopped", async () => {
    setFleets(project, [fleet({ image: "reseat-demo-workload:does-not-exist" })]);
    const watch = await watchAvailability(ids(REPLICAS));
    const failed = await groupCli(project, "up");
    const seen = await watch.stop();
    expect(failed.code).toBe(1);
    expect(failed.doc.error).toContain('image "reseat-demo-workload:does-not-exist"');
    expect(seen.stopOrder).toEqual([]);
    for (const member of current.members) expect((await containersOf(member.peId, false)).map((c) => c.Id)).toEqual([member.executableId]);
  });

  it("scaling 4 -> 2 stops and removes members 2 and 3 and keeps their volumes; back to 4 resumes their state", async () => {
    setFleets(project, [fleet({ replicas: 2 })]);
    const two = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(two.members.map((m) => m.executableId)).toEqual(current.members.slice(0, 2).map((m) => m.executableId));
    for (const o of [2, 3]) {
      expect(await containersOf(`${FLEET}-${o}`)).toHaveLength(0);
      expect(await volumeExists(`reseat-${FLEET}-${o}-state`)).toBe(true);
    }
    setFleets(project, [fleet({ replicas: 4 })]);
    const four = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(four.members.map((m) => m.peId)).toEqual(ids(4));
    for (const o of [2, 3]) expect((await stateOf(o)).lines).toEqual([`m${o}-a`, `m${o}-b`]);
    current = four;
  });

  it("a member removed behind reseat's back: refresh records it gone; the next up brings it back on its volume with its state", async () => {
    const victim = current.members.find((m) => m.ordinal === 1)!;
    await docker.getContainer(victim.executableId).remove({ force: true });
    await mustGroup(project, "refresh");
    expect(recordedFleetMembers(checkpointText(project)).map((m) => m.ordinal)).toEqual([0, 2, 3]);
    const back = fleetOutputs(await mustGroup(project, "up"), FLEET);
    expect(back.members.map((m) => m.ordinal)).toEqual([0, 1, 2, 3]);
    expect(back.members[1]!.generation).toBe(victim.generation + 1);
    expect((await stateOf(1)).lines).toEqual(["m1-a", "m1-b"]);
    for (const o of [0, 2, 3]) expect(back.members[o]!.executableId).toBe(current.members[o]!.executableId);
    current = back;
  });

  it("invalid fleet specs fail preview naming each field; nothing is created", async () => {
    const bad = makeProject("fleet-invalid", []);
    const [onK8s, withPostgres] = [`${FLEET}k`, `${FLEET}p`];
    setFleets(bad, [
      { ...fleet({ template: { kubernetes: { namespace: "ns-{{ordinal}}" }, network: undefined, resources: undefined } }), name: onK8s },
      { ...fleet({ template: { persistentStore: { kind: "postgres", host: "127.0.0.1", database: "d", user: "u", password: "p" } } }), name: withPostgres },
    ]);
    const preview = await groupCli(bad, "preview");
    expect(preview.code).toBe(1);
    expect(preview.doc.error).toContain(`fleet "${onK8s}":\n  - template.kubernetes.namespace: expected one engine for every member of a fleet`);
    expect(preview.doc.error).toContain(`fleet "${withPostgres}":\n  - template.persistentStore.kind: expected "none" or "directory" in a fleet`);
    for (const name of [onK8s, withPostgres]) {
      expect(await containersOf(`${name}-0`)).toHaveLength(0);
      expect(await volumeExists(`reseat-${name}-0-state`)).toBe(false);
    }
  });

  it("destroy removes every member's executable and keeps every volume", async () => {
    await mustGroup(project, "destroy");
    for (const id of ids(REPLICAS)) {
      expect(await containersOf(id)).toHaveLength(0);
      expect(await volumeExists(`reseat-${id}-state`)).toBe(true);
    }
  });
});
