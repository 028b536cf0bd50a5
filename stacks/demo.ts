// The demo: bring a stack up, write state through the workload, change the image the way a user would
// (edit stacks/Pulumi.<stack>.yaml), bring it up again, and show the PE before and after.
//   node dist/stacks/demo.js [--stack local|k8s]
// local: the local Docker Engine (the workload on the host network). k8s: the cluster the ambient
// kubeconfig reaches (scripts/demo.sh --stack k8s starts the local one); the workload is reached at its
// pod's address.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { openStack, PROJECT_ROOT } from "../src/automation/stack";
import { KubernetesBackend } from "../src/backend/kubernetes/kubernetesBackend";

const FROM = "reseat-demo-workload:v1";
const TO = "reseat-demo-workload:v2";

interface PeView {
  peId: string;
  generation: number;
  executableName: string;
  volumeName: string;
  host: string;
  [key: string]: unknown;
}

interface DemoSpec {
  env?: { PORT?: string };
  kubernetes?: { namespace?: string };
}

async function upAndShow(stackName: string, title: string): Promise<PeView> {
  const stack = await openStack({ stackName });
  const result = await stack.up({ onOutput: (text) => process.stderr.write(text), color: "never" });
  const pes = result.outputs.processingElements?.value as Record<string, PeView>;
  const pe = pes.demo!;
  console.log(`\n=== ${title}: stack outputs for PE "demo" ===\n${JSON.stringify(pe, null, 2)}`);
  return pe;
}

/** Where the demo workload answers: loopback (Docker, host network) or its pod's address (Kubernetes). */
async function baseUrl(spec: DemoSpec, pe: PeView): Promise<string> {
  const port = Number(spec.env?.PORT ?? 18080);
  if (!spec.kubernetes) return `http://127.0.0.1:${port}`;
  const backend = new KubernetesBackend({ namespace: spec.kubernetes.namespace ?? "default" });
  const pod = await backend.clients.core.readNamespacedPod({ name: pe.executableName, namespace: backend.namespace });
  return `http://${pod.status?.podIP}:${port}`;
}

async function state(url: string): Promise<{ version: string; generation: number; lines: string[] }> {
  const res = await fetch(`${url}/state`);
  return (await res.json()) as { version: string; generation: number; lines: string[] };
}

/** The demo's namespace, made if missing (a namespace is the cluster admin's, not the PE's). */
async function ensureNamespace(namespace: string): Promise<void> {
  const backend = new KubernetesBackend({ namespace });
  await backend.clients.core.createNamespace({ body: { metadata: { name: namespace } } }).catch((error: { code?: number }) => {
    if (error.code !== 409) throw error;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { stack: { type: "string", default: "local" } } });
  const stackName = values.stack!;
  const configFile = path.join(PROJECT_ROOT, "stacks", `Pulumi.${stackName}.yaml`);
  const original = fs.readFileSync(configFile, "utf8");
  const spec: DemoSpec = {
    env: { PORT: /PORT:\s*"?(\d+)/.exec(original)?.[1] },
    ...(/^\s+kubernetes:/m.test(original) ? { kubernetes: { namespace: /namespace:\s*(\S+)/.exec(original)?.[1] } } : {}),
  };
  if (spec.kubernetes) await ensureNamespace(spec.kubernetes.namespace ?? "default");
  try {
    const before = await upAndShow(stackName, "before");
    const urlBefore = await baseUrl(spec, before);
    for (let i = 1; i <= 3; i++) {
      await fetch(`${urlBefore}/append?line=${encodeURIComponent(`written by generation ${before.generation} at ${new Date().toISOString()} #${i}`)}`, { method: "POST" });
    }
    const seenBefore = await state(urlBefore);
    console.log(`\nstate seen by ${seenBefore.version} (generation ${seenBefore.generation}) on ${before.host}: ${seenBefore.lines.length} lines`);
    seenBefore.lines.slice(-5).forEach((line) => console.log(`  ${line}`));

    console.log(`\n--- changing the image ${FROM} -> ${TO} in stacks/Pulumi.${stackName}.yaml, then up ---`);
    fs.writeFileSync(configFile, original.replace(FROM, TO));
    const after = await upAndShow(stackName, "after");
    const seenAfter = await state(await baseUrl(spec, after));
    console.log(`\nstate seen by ${seenAfter.version} (generation ${seenAfter.generation}) on ${after.host}: ${seenAfter.lines.length} lines`);
    seenAfter.lines.slice(-5).forEach((line) => console.log(`  ${line}`));

    const kept = seenBefore.lines.every((line) => seenAfter.lines.includes(line));
    console.log(
      `\nsummary: peId ${before.peId} -> ${after.peId}; volume ${before.volumeName} -> ${after.volumeName}; host ${before.host} -> ${after.host}; ` +
        `generation ${before.generation} -> ${after.generation}; executable ${before.executableName} -> ${after.executableName}; ` +
        `state ${kept ? "intact" : "LOST"} (${seenBefore.lines.length} lines before, ${seenAfter.lines.length} after)`,
    );
    if (!kept) process.exitCode = 1;
  } finally {
    // Leave the tracked stack config as it was; the next `reseat up` returns the PE to v1 (same volume).
    fs.writeFileSync(configFile, original);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
