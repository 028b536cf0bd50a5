// Issue 23, item 4: a fleet's input holes, tried as a new user would on Docker (real reseat CLI,
// Automation API on the real Pulumi CLI, the real engine): an unknown top-level field, maxUnavailable
// out of bounds, a fleet "<name>" beside a ProcessingElement "<name>-1" in one program (preview), and in
// two stacks (the owner check at up, both ways round). Each fails naming the field, or the volume and
// its owner, and creates nothing of the refused one.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanup, containersOf, demoSpec, docker, makeProject, reseatCli, volumeExists } from "../support/harness";
import { demoGroupSpec, groupCli, setFleets } from "../support/group";

const FLEET = `itfi${process.pid % 100000}`;
// Eight ports per run, away from the other fleet and group tests' (17000+, 18000+, 19000+).
const BASE_PORT = 16400 + (process.pid % 100) * 8;
const ids = [`${FLEET}-0`, `${FLEET}-1`];
const fleet = (overrides: Parameters<typeof demoGroupSpec>[3] = {}) => demoGroupSpec(FLEET, BASE_PORT, 2, overrides);

/** A program of the user's own: fleet FLEET (2 members) and a ProcessingElement "<FLEET>-1", in that order or the other. */
function writeProgram(dir: string, peFirst: boolean): string {
  const file = path.join(dir, "fleetAndPe.js");
  const { name, ...args } = fleet();
  const declareFleet = `new ProcessingElementFleet(${JSON.stringify(name)}, ${JSON.stringify(args)});`;
  const declarePe = `new ProcessingElement(${JSON.stringify(`${FLEET}-1`)}, ${JSON.stringify(demoSpec(`${FLEET}-1`, BASE_PORT + 5))});`;
  fs.writeFileSync(
    file,
    `const { ProcessingElement, ProcessingElementFleet } = require(${JSON.stringify(path.join(ROOT, "dist", "components"))});\n` +
      `module.exports = async () => {\n  ${peFirst ? declarePe : declareFleet}\n  ${peFirst ? declareFleet : declarePe}\n  return {};\n};\n`,
  );
  return file;
}

async function nothingCreated(): Promise<void> {
  for (const id of ids) {
    expect(await containersOf(id), id).toHaveLength(0);
    expect(await volumeExists(`reseat-${id}-state`), id).toBe(false);
  }
}

describe("a fleet's input holes, closed", () => {
  beforeAll(async () => {
    await cleanup(ids);
  });
  afterAll(async () => {
    await cleanup(ids);
  });

  it("an unknown field at the fleet's top level fails preview naming it", async () => {
    const project = makeProject("fleet-inputs-unknown", []);
    setFleets(project, [{ ...fleet(), replica: 3 }]);
    const result = await groupCli(project, "preview");
    expect(result.code).not.toBe(0);
    expect(result.doc.error).toMatch(/- replica: unknown field/);
    await nothingCreated();
  });

  it('maxUnavailable above replicas, and "150%", fail preview naming the field and saying the bounds', async () => {
    const project = makeProject("fleet-inputs-bounds", []);
    setFleets(project, [fleet({ maxUnavailable: 5 })]);
    const above = await groupCli(project, "preview");
    expect(above.code).not.toBe(0);
    expect(above.doc.error).toContain("- rollout.maxUnavailable: expected at most replicas (2) members, got 5");
    expect(above.doc.error).toContain('here 1 to 2, or "100%"');
    setFleets(project, [{ ...fleet(), rollout: { maxUnavailable: "150%" } }]);
    const percent = await groupCli(project, "preview");
    expect(percent.code).not.toBe(0);
    expect(percent.doc.error).toMatch(
      /- rollout\.maxUnavailable: expected a whole number of members from 1 to replicas, or a percentage of replicas from "1%" to "100%"/,
    );
    expect(percent.doc.error).not.toContain("25%");
    await nothingCreated();
  });

  for (const peFirst of [false, true]) {
    it(`one program with fleet "${FLEET}" and a ProcessingElement "${FLEET}-1" (${peFirst ? "PE" : "fleet"} first) fails preview and up naming the field`, async () => {
      await cleanup(ids);
      const project = makeProject("fleet-inputs-program", []);
      const program = writeProgram(project.dir, peFirst);
      for (const command of ["preview", "up"]) {
        const result = await reseatCli(project, command, "--program", program);
        expect(result.code, command).not.toBe(0);
        if (peFirst) {
          expect(result.doc.error).toContain(`- name: member ${FLEET}-1: expected a peId unique in the program; "${FLEET}-1" is already used by "${FLEET}-1"`);
          expect(result.doc.error).toContain(`- template.volume.name: member ${FLEET}-1: expected a state volume of its own; "reseat-${FLEET}-1-state"`);
        } else {
          expect(result.doc.error).toContain(
            `- "${FLEET}-1".peId: expected a peId unique in the program; "${FLEET}-1" is already used by fleet "${FLEET}" member ${FLEET}-1`,
          );
          expect(result.doc.error).toContain(`"reseat-${FLEET}-1-state" is already the state volume of fleet "${FLEET}" member ${FLEET}-1`);
        }
        if (command === "preview") await nothingCreated();
      }
      // At up the one declared first may have been registered before the program failed (Pulumi runs a
      // registered resource while the program goes on); the one refused never is, so the volume never
      // has a second owner: on member 1's volume at most one executable, and never the PE's.
      const onVolume = await docker.listContainers({ all: true, filters: { volume: [`reseat-${FLEET}-1-state`] } });
      expect(onVolume.length).toBeLessThanOrEqual(1);
      const ports = await Promise.all(onVolume.map(async (c) => (await docker.getContainer(c.Id).inspect()).Config.Env.find((e) => e.startsWith("PORT="))));
      expect(ports).not.toContain(peFirst ? `PORT=${BASE_PORT + 1}` : `PORT=${BASE_PORT + 5}`);
      if (peFirst) expect(await containersOf(`${FLEET}-0`)).toHaveLength(0);
      await cleanup(ids);
    });
  }

  it("two stacks: a PE on a fleet member's volume is refused at up naming the volume and its owner, and a fleet member on a PE's", async () => {
    await cleanup(ids);
    const fleetStack = makeProject("fleet-inputs-fleet", [], "fleetstack");
    const peStack = makeProject("fleet-inputs-pe", [demoSpec(`${FLEET}-1`, BASE_PORT + 6)], "pestack");
    // Both members at once: the test is about the owner check, not the rollout order.
    setFleets(fleetStack, [fleet({ maxUnavailable: 2 })]);
    const up = await groupCli(fleetStack, "up");
    expect(up.code, up.doc.error).toBe(0);
    const refused = await reseatCli(peStack, "up");
    expect(refused.code).not.toBe(0);
    expect(refused.doc.error).toContain(
      `state volume "reseat-${FLEET}-1-state" belongs to reseat/fleetstack/${FLEET}-1; refusing to bind it to reseat/pestack/${FLEET}-1`,
    );
    // The member runs on, the only container on its volume.
    expect((await containersOf(`${FLEET}-1`, false)).map((c) => c.Labels["io.reseat.owner"] ?? "")).not.toContain(`reseat/pestack/${FLEET}-1`);
    expect((await reseatCli(peStack, "outputs")).doc.outputs ?? {}).toEqual({});
    // (Removed behind the stacks' backs: the other half uses fresh stacks of the same names.)
    await cleanup(ids);

    // The other way round: the PE's stack first, then a fleet whose member 1 would take its volume.
    const peFirst = makeProject("fleet-inputs-pe", [demoSpec(`${FLEET}-1`, BASE_PORT + 6)], "pestack");
    const fleetSecond = makeProject("fleet-inputs-fleet", [], "fleetstack");
    setFleets(fleetSecond, [fleet({ maxUnavailable: 2 })]);
    expect((await reseatCli(peFirst, "up")).code).toBe(0);
    const member = await groupCli(fleetSecond, "up");
    expect(member.code).not.toBe(0);
    expect(member.doc.error).toContain(
      `state volume "reseat-${FLEET}-1-state" belongs to reseat/pestack/${FLEET}-1; refusing to bind it to reseat/fleetstack/${FLEET}-1`,
    );
    const running = await containersOf(`${FLEET}-1`, false);
    expect(running).toHaveLength(1);
    expect(running[0]!.Labels["io.reseat.owner"]).toBe(`reseat/pestack/${FLEET}-1`);
    await cleanup(ids);
  });
});
