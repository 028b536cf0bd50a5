// The backend contract (test/contract/backendContract.ts) on the in-memory fake: the engine-free unit
// tests rely on the fake behaving as the real engines do, and this is where that is checked.
import { STATUS_RECORD, STORE_PASSWORD_FILE, storeFolder } from "@reseat/state/contract";
import type { FileOwner } from "../../../src/backend/backend";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { storeSource } from "../../../src/backend/fileRecords";
import { defineBackendContract, sha256 } from "../../contract/backendContract";

defineBackendContract("fake", async () => {
  const backend = new FakeBackend();
  const crashing = "reseat-crash-at-start:1";
  const absent = "127.0.0.1:9/reseat-contract-absent:none";
  backend.faults.crashingImages.add(crashing);
  backend.absentImages.add(absent);
  return {
    backend,
    volumeDriver: "local",
    images: { ready: "reseat-demo-workload:v1", stateful: "reseat-session-workload:v1", crashing, crashOutput: /fake crash/, absent },
    damageRecord: async (volumeName, record, text) => backend.putVolumeFiles(volumeName, { [record.file]: text }),
    // What the state library writes as it starts (the fake runs no workload).
    workloadReports: async (desired, generation) => {
      const status = {
        peId: desired.peId,
        generation,
        phase: "serving" as const,
        resumedFrom: "empty" as const,
        resumedSeq: 0,
        seq: 0,
        commitIntervalMs: desired.commitIntervalMs,
        lastCommit: null,
        lastCommitError: null,
        lastCommitAttemptAt: null,
        restoreFailed: null,
        updatedAt: new Date().toISOString(),
      };
      backend.putVolumeFiles(desired.volumeName, { [STATUS_RECORD.file]: STATUS_RECORD.encode(status) });
    },
    // No process runs in the fake: what a workload would see follows from the owners it keeps (the
    // files as Docker keeps them: a file is the workload's when it belongs to the workload's user).
    workloadView: async (_id, desired) => {
      const user = desired.user ?? { uid: 0, gid: 0 };
      const ownedBy = (owner: FileOwner | undefined) => (owner ? owner.uid === user.uid && owner.gid === user.gid : user.uid === 0);
      const secret = backend.volumeFile(desired.volumeName, STORE_PASSWORD_FILE);
      const root = backend.volumeFile(desired.volumeName, "./");
      const store = desired.store;
      const folder = store.kind === "directory" ? backend.volumeFile(storeSource(store), `${storeFolder(desired.peId)}/`) : undefined;
      return {
        uid: user.uid,
        gid: user.gid,
        storeSecret: store.kind !== "postgres" ? null : secret && ownedBy(secret.owner) ? sha256(secret.text) : "unreadable: EACCES",
        stateWritable: root && ownedBy(root.owner) ? true : "failed: EACCES",
        storeWritable: store.kind !== "directory" ? null : folder && ownedBy(folder.owner) ? true : "failed: EACCES",
      };
    },
  };
});
