// Issue: a PE on Docker replaced by a real `pulumi up`. Real Pulumi CLI (through the reseat CLI and
// the Automation API), real Docker Engine, the demo workload writing to its state volume.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PeOutputs,
  Project,
  cleanup,
  containersOf,
  demoSpec,
  docker,
  httpJson,
  makeProject,
  mustSucceed,
  peOutputs,
  reseatCli,
  recordLiveness,
  setSpecs,
  volumeExists,
  watchConcurrency,
} from "../support/harness";

const PE = `it-repl-${process.pid}`;
const PORT = 18200 + (process.pid % 500);
type StateView = { version: string; generation: number; lines: string[] };

describe("a processing element replaced by pulumi up", () => {
  let project: Project;
  let first: PeOutputs;

  beforeAll(async () => {
    await cleanup([PE]);
    project = makeProject("replacement", [demoSpec(PE, PORT)]);
  });
  afterAll(async () => {
    await cleanup([PE]);
  });

  it("up creates the PE and the workload writes state into its volume", async () => {
    first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.peId).toBe(PE);
    expect(first.generation).toBe(1);
    expect(first.volumeName).toBe(`reseat-${PE}-state`);
    expect(first.host).toBeTruthy();
    expect(first.commitIntervalMs).toBe(5000);
    expect(Date.parse(first.replacedAt)).not.toBeNaN();
    for (const line of ["a", "b", "c"]) await httpJson(PORT, `/append?line=${line}`, "POST");
    const state = await httpJson<StateView>(PORT, "/state");
    expect(state.lines).toEqual(["a", "b", "c"]);
    expect(await volumeExists(first.volumeName)).toBe(true);
  });

  it("an image change previews as exactly one replace: the executable; the volume is unchanged", async () => {
    setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2" })]);
    const preview = await mustSucceed(project, "preview");
    const changed = (preview.doc.steps ?? []).filter((s) => s.op !== "same" && s.type.startsWith("pulumi-nodejs:dynamic/reseat"));
    expect(new Set(changed.map((s) => s.type))).toEqual(new Set(["pulumi-nodejs:dynamic/reseat:Executable"]));
    expect(changed.every((s) => ["replace", "create-replacement", "delete-replaced"].includes(s.op))).toBe(true);
    const volumeStep = (preview.doc.steps ?? []).find((s) => s.type === "pulumi-nodejs:dynamic/reseat:StateVolume");
    expect(volumeStep?.op).toBe("same");
    expect(preview.doc.changeSummary?.replace).toBe(1);
  });

  it("up replaces only the executable: same volume, all state, generation + 1, same peId, never two live", async () => {
    const polled = watchConcurrency(PE);
    const events = await recordLiveness(PE);
    const second = peOutputs(await mustSucceed(project, "up"), PE);
    const observed = await polled.stop();
    const live = await events.stop();

    expect(second.peId).toBe(first.peId);
    expect(second.volumeName).toBe(first.volumeName);
    expect(second.generation).toBe(first.generation + 1);
    expect(second.executableId).not.toBe(first.executableId);
    const state = await httpJson<StateView>(PORT, "/state");
    expect(state.version).toBe("v2");
    expect(state.generation).toBe(2);
    expect(state.lines).toEqual(["a", "b", "c"]);
    // The old container is gone; exactly one executable of this PE exists.
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([second.executableId]);
    expect(observed.maxRunning).toBe(1);
    expect(live.events.filter((e) => e.action === "start")).toHaveLength(1);
    expect(live.maxLive).toBe(1);
    first = second;
  });

  it("an env change replaces the executable too", async () => {
    setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2", env: { PORT: String(PORT), GREETING: "hello" } })]);
    const events = await recordLiveness(PE);
    const third = peOutputs(await mustSucceed(project, "up"), PE);
    const live = await events.stop();
    expect(third.generation).toBe(first.generation + 1);
    expect(live.maxLive).toBe(1);
    expect((await httpJson<StateView>(PORT, "/state")).lines).toEqual(["a", "b", "c"]);
    first = third;
  });

  it("a commit-interval change updates in place: no new executable", async () => {
    setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2", env: { PORT: String(PORT), GREETING: "hello" }, commitInterval: "7s" })]);
    const result = await mustSucceed(project, "up");
    const after = peOutputs(result, PE);
    expect(after.executableId).toBe(first.executableId);
    expect(after.generation).toBe(first.generation);
    expect(after.commitIntervalMs).toBe(7000);
    expect(result.doc.summary?.replace ?? 0).toBe(0);
  });

  it("docker rm -f, then refresh + up: a new executable on the same volume, generation + 1, state intact", async () => {
    await httpJson(PORT, "/append?line=d", "POST");
    await docker.getContainer(first.executableId).remove({ force: true });
    await mustSucceed(project, "refresh");
    const healed = peOutputs(await mustSucceed(project, "up"), PE);
    expect(healed.generation).toBe(first.generation + 1);
    expect(healed.volumeName).toBe(first.volumeName);
    expect((await httpJson<StateView>(PORT, "/state")).lines).toEqual(["a", "b", "c", "d"]);
    expect(await containersOf(PE)).toHaveLength(1);
    first = healed;
  });

  it("a change that would need a new volume (driver, name) is refused at preview, naming the field", async () => {
    for (const volume of [{ driver: "other-driver" }, { name: "another-volume" }]) {
      setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2", env: { PORT: String(PORT), GREETING: "hello" }, volume })]);
      const preview = await reseatCli(project, "preview");
      expect(preview.code).not.toBe(0);
      expect(preview.doc.error).toMatch(new RegExp(`refusing to change volume\\.${Object.keys(volume)[0]}`));
    }
    setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2", env: { PORT: String(PORT), GREETING: "hello" } })]);
    expect((await containersOf(PE, false)).map((c) => c.Id)).toEqual([first.executableId]);
  });

  it("create refuses to start a second writer when a container reseat does not own runs on the volume", async () => {
    const intruder = await docker.createContainer({
      Image: "reseat-demo-workload:v1",
      Cmd: ["node", "-e", "setTimeout(() => {}, 600000)"],
      HostConfig: { NetworkMode: "none", Mounts: [{ Type: "volume", Source: first.volumeName, Target: "/x" }] },
    });
    await intruder.start();
    try {
      await docker.getContainer(first.executableId).remove({ force: true });
      await mustSucceed(project, "refresh");
      const up = await reseatCli(project, "up");
      expect(up.code).not.toBe(0);
      expect(up.doc.error).toMatch(/is mounted by running container\(s\) reseat does not own/);
      expect(await containersOf(PE)).toHaveLength(0);
    } finally {
      await intruder.remove({ force: true });
    }
    first = peOutputs(await mustSucceed(project, "up"), PE);
    expect((await httpJson<StateView>(PORT, "/state")).lines).toEqual(["a", "b", "c", "d"]);
  });

  it("destroy removes the executable and keeps the volume and its data by default", async () => {
    await mustSucceed(project, "destroy");
    expect(await containersOf(PE)).toHaveLength(0);
    expect(await volumeExists(first.volumeName)).toBe(true);

    // Bringing the PE back adopts the kept volume: the state and the generation carry on.
    const back = peOutputs(await mustSucceed(project, "up"), PE);
    expect(back.generation).toBe(first.generation + 1);
    expect((await httpJson<StateView>(PORT, "/state")).lines).toEqual(["a", "b", "c", "d"]);
  });

  it("with volume.retainOnDestroy: false, destroy deletes the volume too", async () => {
    setSpecs(project, [demoSpec(PE, PORT, { image: "reseat-demo-workload:v2", volume: { retainOnDestroy: false } })]);
    await mustSucceed(project, "up");
    await mustSucceed(project, "destroy");
    expect(await containersOf(PE)).toHaveLength(0);
    expect(await volumeExists(`reseat-${PE}-state`)).toBe(false);
  });
});
