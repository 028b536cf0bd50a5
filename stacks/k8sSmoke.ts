// A smoke stack for a Kubernetes cluster, with @pulumi/kubernetes: a namespace, a StorageClass of the local
// cluster's node-local provisioner, and per node a claim and a pod pinned to that node that mounts it.
// Changing `revision` replaces the pods (deleted before their replacement is created: one writer per claim)
// while the claims — and the data on them — are kept.
//
// Config (project `reseat`), e.g. stacks/Pulumi.<stack>.yaml:
//   reseat:k8sSmoke: { namespace: smoke, image: reseat-demo-workload:v1, nodes: [node1, node2], revision: "1" }
// The cluster is the ambient one (KUBECONFIG): nothing machine-specific goes into the stack's state.
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";

interface SmokeConfig {
  namespace: string;
  /** An image with `node` on its PATH, already in every node's image store (scripts/cluster.sh load-image). */
  image: string;
  nodes: string[];
  revision: string;
}

// Marks the volume as mounted and writable, then holds until told to stop.
const HOLD = [
  "const fs = require('fs');",
  "fs.writeFileSync('/data/.mounted-by-revision', process.env.SMOKE_REVISION);",
  "process.on('SIGTERM', () => process.exit(0));",
  "setInterval(() => {}, 1 << 30);",
].join(" ");

function readConfig(): SmokeConfig {
  const cfg = new pulumi.Config("reseat").requireObject<Partial<SmokeConfig>>("k8sSmoke");
  const problems: string[] = [];
  if (typeof cfg.namespace !== "string" || !/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/.test(cfg.namespace)) {
    problems.push("namespace: expected a DNS label of at most 42 characters");
  }
  if (typeof cfg.image !== "string" || cfg.image === "") problems.push("image: expected an image reference");
  if (!Array.isArray(cfg.nodes) || cfg.nodes.length === 0 || !cfg.nodes.every((n) => typeof n === "string" && n !== "")) {
    problems.push("nodes: expected a non-empty list of node names");
  }
  if (typeof cfg.revision !== "string") problems.push("revision: expected a string");
  if (problems.length > 0) throw new Error(`reseat:k8sSmoke is invalid:\n  - ${problems.join("\n  - ")}`);
  return cfg as SmokeConfig;
}

export default async function program(): Promise<Record<string, unknown>> {
  const cfg = readConfig();
  const namespace = new k8s.core.v1.Namespace("smoke", { metadata: { name: cfg.namespace } });
  // Delete rather than the cluster default's Retain, so that a smoke run leaves no volumes behind.
  const storageClass = new k8s.storage.v1.StorageClass("node-local", {
    metadata: { name: `${cfg.namespace}-node-local` },
    provisioner: "reseat.local/node-local",
    volumeBindingMode: "WaitForFirstConsumer",
    reclaimPolicy: "Delete",
  });
  const pods: Record<string, pulumi.Output<unknown>> = {};
  for (const node of cfg.nodes) {
    const claim = new k8s.core.v1.PersistentVolumeClaim(`data-${node}`, {
      metadata: { name: `data-${node}`, namespace: namespace.metadata.name },
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: storageClass.metadata.name,
        resources: { requests: { storage: "64Mi" } },
      },
    });
    const pod = new k8s.core.v1.Pod(
      `holder-${node}`,
      {
        metadata: { name: `holder-${node}`, namespace: namespace.metadata.name, labels: { app: "reseat-k8s-smoke" } },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node },
          terminationGracePeriodSeconds: 10,
          containers: [
            {
              name: "holder",
              image: cfg.image,
              imagePullPolicy: "Never", // images come from `cluster.sh load-image`, not a registry
              command: ["node", "-e", HOLD],
              env: [{ name: "SMOKE_REVISION", value: cfg.revision }],
              volumeMounts: [{ name: "data", mountPath: "/data" }],
              readinessProbe: {
                exec: { command: ["node", "-e", "require('fs').accessSync('/data/.mounted-by-revision')"] },
                periodSeconds: 1,
              },
            },
          ],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim.metadata.name } }],
        },
      },
      { deleteBeforeReplace: true },
    );
    pods[node] = pulumi
      .all([pod.metadata.name, pod.metadata.uid, pod.spec.nodeName, claim.metadata.name])
      .apply(([name, uid, nodeName, claimName]) => ({ name, uid, nodeName, claimName }));
  }
  return { namespace: namespace.metadata.name, storageClass: storageClass.metadata.name, pods };
}
