// The backend contract (test/contract/backendContract.ts) on the machine's Docker Engine, with the
// images scripts/images.sh builds: the demo workload (ready on GET /healthz) and one that exits at start.
import * as fs from "node:fs";
import * as path from "node:path";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { defineBackendContract } from "../contract/backendContract";

defineBackendContract("docker", async () => {
  const backend = new DockerBackend();
  return {
    backend,
    volumeDriver: "local",
    images: {
      ready: "reseat-demo-workload:v1",
      stateful: "reseat-session-workload:v1",
      crashing: "reseat-crash-at-start:1",
      crashOutput: /crashing at start \(test image\)/,
      // A registry on a closed local port: asking it fails at once, and nothing leaves the machine.
      absent: "127.0.0.1:9/reseat-contract-absent:none",
    },
    // Straight into the volume's folder on this host (the tests run beside the engine, as root).
    damageRecord: async (volumeName, record, text) => {
      const { Mountpoint } = (await backend.docker.getVolume(volumeName).inspect()) as { Mountpoint: string };
      fs.writeFileSync(path.join(Mountpoint, record.file), text);
    },
  };
});
