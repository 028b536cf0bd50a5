// Non-root workloads: what reseat writes into the state volume (and the PE's folder of a directory store)
// belongs to the workload's user, with the usual modes; the spec's runAsUser wins over the image's USER.
import { describe, expect, it } from "vitest";
import { reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume } from "./fixtures";
import { problemsOf } from "../schema/problems";

describe("non-root workloads", () => {
  it("the spec's runAsUser/runAsGroup: volume root, .reseat/, meta, control, password file and store folder are theirs", async () => {
    const desired = {
      ...desiredFor("pe-a", { runAsUser: 1000, runAsGroup: 2000, persistentStore: { kind: "none" } }),
      store: { kind: "postgres" as const, host: "127.0.0.1", port: 5432, database: "d", user: "u", table: "reseat_commits", keep: 5, password: "pw" },
    };
    const backend = await engineWithVolume(desired);
    // A volume that already has a generation (else the PostgreSQL store would be asked for one).
    await backend.recordGeneration({ peId: "pe-a", generation: 3, volume: desired.volumeName, updatedAt: new Date().toISOString() });
    await reseat(backend, desired, { holder: "test" });
    const owner = { uid: 1000, gid: 2000 };
    expect(desired.user).toEqual(owner);
    for (const [file, mode] of [
      ["./", 0o755],
      [".reseat/", 0o755],
      [".reseat/meta.json", 0o644],
      [".reseat/control.json", 0o644],
      [".reseat/secrets/store-password", 0o600],
    ] as const) {
      expect(backend.volumeFile(desired.volumeName, file), file).toMatchObject({ mode, owner });
    }
    expect(backend.executables.values().next().value?.desired.user).toEqual(owner); // the container runs as them
  });

  it("without runAsUser, the image's USER; a directory store gets the PE's folder; root images write as before", async () => {
    const desired = desiredFor("pe-b");
    const backend = await engineWithVolume(desired);
    backend.imageUsers.set(desired.imageId, { uid: 1000, gid: 1000 });
    await reseat(backend, desired, { holder: "test" });
    expect(backend.volumeFile(desired.volumeName, ".reseat/meta.json")?.owner).toEqual({ uid: 1000, gid: 1000 });
    expect(backend.volumeFile("reseat-store", "pe-b/")).toMatchObject({ mode: 0o755, owner: { uid: 1000, gid: 1000 } });
    expect(backend.volumeFile("reseat-store", "./")).toMatchObject({ mode: 0o1777, owner: undefined }); // shared: sticky, anyone's folder

    const rooted = desiredFor("pe-c");
    const rootBackend = await engineWithVolume(rooted);
    await reseat(rootBackend, rooted, { holder: "test" });
    expect(rootBackend.volumeFile(rooted.volumeName, ".reseat/meta.json")?.owner).toBeUndefined();
    expect(rootBackend.volumeFile(rooted.volumeName, "./")).toBeUndefined();
  });

  it("validates runAsUser/runAsGroup, naming the field", () => {
    expect(problemsOf({ peId: "pe-a", image: "x:1", runAsUser: -1 })).toEqual([{ field: "runAsUser", expected: "expected 0 or more" }]);
    expect(problemsOf({ peId: "pe-a", image: "x:1", runAsUser: "node" })).toEqual([{ field: "runAsUser", expected: "expected a numeric user or group id" }]);
    expect(problemsOf({ peId: "pe-a", image: "x:1", runAsGroup: 1000 })).toEqual([
      { field: "runAsGroup", expected: "expected runAsUser too (a group alone does not choose the user)" },
    ]);
  });
});
