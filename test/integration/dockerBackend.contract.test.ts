// The backend contract (test/contract/backendContract.ts) on the machine's Docker Engine, with the
// images scripts/images.sh builds: the demo workload (ready on GET /healthz) and one that exits at start.
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { defineBackendContract } from "../contract/backendContract";

defineBackendContract("docker", async () => ({
  backend: new DockerBackend(),
  volumeDriver: "local",
  images: {
    ready: "reseat-demo-workload:v1",
    stateful: "reseat-session-workload:v1",
    crashing: "reseat-crash-at-start:1",
    crashOutput: /crashing at start \(test image\)/,
    // A registry on a closed local port: asking it fails at once, and nothing leaves the machine.
    absent: "127.0.0.1:9/reseat-contract-absent:none",
  },
}));
