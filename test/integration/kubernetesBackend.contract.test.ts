// The backend contract (test/contract/backendContract.ts) on the local Kubernetes cluster: a namespace
// and StorageClass of its own (removed afterwards), the test images loaded into the nodes.
import { KubernetesBackend } from "../../src/backend/kubernetes/kubernetesBackend";
import { defineBackendContract } from "../contract/backendContract";
import { recordName } from "../../src/backend/kubernetes/objects";
import { clusterScript, kubectl } from "../support/kubernetes";
import { makeTestNamespace, useCluster } from "../support/kubernetesPe";

const IMAGES = { ready: "reseat-demo-workload:v1", crashing: "reseat-crash-at-start:1", stateful: "reseat-session-workload:v1" };

defineBackendContract("kubernetes", async (prefix) => {
  useCluster();
  // The images the bootstrap built (scripts/images.sh), onto every node (skipped where already there).
  const loaded = await clusterScript("load-image", IMAGES.ready, IMAGES.crashing, IMAGES.stateful);
  if (loaded.code !== 0) throw new Error(`cluster.sh load-image failed: ${loaded.stderr}`);
  const namespace = `reseat-it-${prefix}`;
  const cluster = await makeTestNamespace(namespace);
  return {
    backend: new KubernetesBackend({ namespace }),
    volumeDriver: cluster.storageClass,
    volumeSize: "16Mi",
    images: { ...IMAGES, crashOutput: /crashing at start \(test image\)/, absent: "127.0.0.1:9/reseat-contract-absent:none" },
    // The workload's status is read through the API server's pod proxy, at the endpoint the spec names.
    adapt: (desired) => ({ ...desired, engine: { kind: "kubernetes", namespace }, kubernetes: { status: { port: 8080, path: "/status" } } }),
    // The record ConfigMap's key (the file's name), patched around reseat.
    damageRecord: async (volumeName, record, text) => {
      const key = record.file.slice(record.file.lastIndexOf("/") + 1);
      await kubectl("-n", namespace, "patch", "configmap", recordName(volumeName), "--type", "merge", "-p", JSON.stringify({ data: { [key]: text } }));
    },
    teardown: () => cluster.remove(),
  };
});
