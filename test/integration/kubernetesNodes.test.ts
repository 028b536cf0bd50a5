// PEs on both nodes of the local cluster: every new pod lands on the node that holds its claim, over 20
// replacements each; and a node that cannot take pods makes reseat wait for it (never move the PE).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, makeProject, mustSucceed, peOutputs, reseatCli, setSpecs } from "../support/harness";
import { kubectl, pollFor } from "../support/kubernetes";
import { NODES, k8sSessionSpec, loadImages, makeTestNamespace, nodeOfClaim, observePods, podUrl, podsOfPe, useCluster } from "../support/kubernetesPe";
import { KubernetesBackend } from "../../src/backend/kubernetes/kubernetesBackend";
import { reseat } from "../../src/replacement/reseat";
import { executableDesired, volumeOwner } from "../../src/schema/desired";
import { parseProcessingElement } from "../../src/schema/processingElement";

const NAMESPACE = `reseat-it-knodes-${process.pid}`;
const PES = NODES.map((node, i) => ({ peId: `kn${i}-${process.pid}`, node }));
const REPLACEMENTS = 20;
const IMAGES = ["reseat-session-workload:v1", "reseat-session-workload:v2"];

describe("PEs on both nodes", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  const specs = (overrides: (node: string) => Record<string, unknown>) =>
    PES.map(({ peId, node }) => k8sSessionSpec(peId, NAMESPACE, cluster.storageClass, overrides(node)));

  beforeAll(async () => {
    useCluster();
    await loadImages(...IMAGES);
    cluster = await makeTestNamespace(NAMESPACE);
    // The first pods are pinned, one per node, by a node selector; after that only the claims place them.
    project = makeProject("k8s-nodes", []);
    setSpecs(
      project,
      specs((node) => ({ kubernetes: { nodeSelector: { "kubernetes.io/hostname": node } } })),
    );
  });
  afterAll(async () => {
    await kubectl("uncordon", ...NODES).catch(() => undefined);
    if (project) await reseatCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
  });

  it(`over ${REPLACEMENTS} replacements each, every new pod lands on its own claim's node`, async () => {
    const result = await mustSucceed(project, "up");
    for (const { peId, node } of PES) {
      expect(peOutputs(result, peId).host).toBe(node);
      expect(await nodeOfClaim(NAMESPACE, `reseat-${peId}-state`)).toBe(node);
    }
    const backend = new KubernetesBackend({ namespace: NAMESPACE });
    // The replacements run through the one routine (as the provider and the controller do), both PEs at
    // once, each an image change; the spec no longer selects a node: only the claim does.
    const placements = await Promise.all(
      PES.map(async ({ peId }) => {
        const nodes: string[] = [];
        for (let i = 1; i <= REPLACEMENTS; i++) {
          const spec = parseProcessingElement(k8sSessionSpec(peId, NAMESPACE, cluster.storageClass, { image: IMAGES[i % 2] }));
          const desired = { ...executableDesired(spec, IMAGES[i % 2]!), owner: volumeOwner("reseat", project.stack, peId) };
          const replaced = await reseat(backend, desired, { holder: `test:${process.pid}`, replaceRunning: true });
          nodes.push(replaced.host);
          expect(replaced.generation).toBe(1 + i);
        }
        return nodes;
      }),
    );
    PES.forEach(({ node }, index) => expect(placements[index]).toEqual(Array(REPLACEMENTS).fill(node)));
    for (const { peId, node } of PES) {
      const pods = await podsOfPe(NAMESPACE, peId);
      expect(pods.map((p) => [p.metadata?.name, p.spec?.nodeName])).toEqual([[`reseat-${peId}-g${REPLACEMENTS + 1}`, node]]);
    }
    // Pulumi catches up with what runs (refresh), then owns it again.
    await mustSucceed(project, "refresh");
  });

  it("a node that cannot take pods: reseat waits for it — the replacement fails naming the reason, nothing moves; once the node is back the PE returns there", async () => {
    const { peId, node } = PES[0]!;
    const other = PES[1]!;
    const claim = `reseat-${peId}-state`;
    const url = await podUrl(NAMESPACE, (await podsOfPe(NAMESPACE, peId))[0]!.metadata!.name!);
    await fetch(`${url}/sessions/kept`, { method: "PUT", body: JSON.stringify({ n: 42 }) });
    setSpecs(project, [
      k8sSessionSpec(peId, NAMESPACE, cluster.storageClass, {
        image: "reseat-session-workload:v2",
        env: { PORT: "8080", LISTEN_HOST: "0.0.0.0", ROUND: "node-gone" },
        readiness: { httpGet: { port: 8080, path: "/healthz" }, timeout: "20s" },
      }),
      k8sSessionSpec(other.peId, NAMESPACE, cluster.storageClass, { image: IMAGES[REPLACEMENTS % 2] }),
    ]);
    const observer = await observePods(NAMESPACE, peId);
    await kubectl("cordon", node);
    try {
      const refused = await reseatCli(project, "up");
      expect(refused.code).not.toBe(0);
      expect(refused.doc.error).toMatch(/was not ready within 20000 ms .*not scheduled: .*unschedulable/s);
    } finally {
      await kubectl("uncordon", node);
    }
    // Nothing ran elsewhere, and the claim is still on its node.
    const seen = await observer.stop();
    expect(seen.podsSeenRunning.length).toBeLessThanOrEqual(1);
    expect(await nodeOfClaim(NAMESPACE, claim)).toBe(node);
    const back = peOutputs(await mustSucceed(project, "up"), peId);
    expect(back.host).toBe(node);
    const sessions = (await (await fetch(`${await podUrl(NAMESPACE, back.executableName)}/sessions`)).json()) as { sessions: Record<string, { n: number }> };
    expect(sessions.sessions.kept).toEqual({ n: 42 });
    await pollFor("one pod of the PE", 30, async () => ((await podsOfPe(NAMESPACE, peId)).length === 1 ? true : undefined));
  });
});
