// The backend contract (test/contract/backendContract.ts) on the in-memory fake: the engine-free unit
// tests rely on the fake behaving as the real engines do, and this is where that is checked.
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { defineBackendContract } from "../../contract/backendContract";

defineBackendContract("fake", async () => {
  const backend = new FakeBackend();
  const crashing = "reseat-crash-at-start:1";
  const absent = "127.0.0.1:9/reseat-contract-absent:none";
  backend.faults.crashingImages.add(crashing);
  backend.absentImages.add(absent);
  return {
    backend,
    volumeDriver: "local",
    images: { ready: "reseat-demo-workload:v1", crashing, crashOutput: /fake crash/, absent },
  };
});
