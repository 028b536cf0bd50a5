// Issue 23: a fleet on Kubernetes when one node's kubelet stops. The members whose claim is on that node
// wait — left running as they are, never stopped nor moved to the other node on an empty volume — while the
// other node's members roll; the up fails naming the waiting members; the node back, the next up rolls them.
// Real reseat CLI (real Pulumi CLI) running stacks/groups.js on the local two-node cluster; the kubelet is
// stopped with SIGSTOP (its containers keep running, the node controller marks the node NotReady once its
// heartbeats are overdue) and always resumed; what happens to the pods is seen by a pod watch on the API server.
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, checkpointText, makeProject } from "../support/harness";
import { FleetOutputs, fleetOutputs, groupCli, mustGroup, recordedFleetMembers, setFleets } from "../support/group";
import { KUBECONFIG, pollFor } from "../support/kubernetes";
import { api, k8sSessionSpec, loadImages, makeTestNamespace, nodeOfClaim, podUrl, podsOfPe, useCluster } from "../support/kubernetesPe";
import { LABELS } from "../../src/backend/backend";

const FLEET = `kd${process.pid % 100000}`;
const NAMESPACE = `reseat-it-knodedown-${process.pid}`;
const REPLICAS = 4;
const WRITES_PER_MEMBER = 3;
const V1 = "reseat-session-workload:v1";
const V2 = "reseat-session-workload:v2";
const claimName = (peId: string) => `reseat-${peId}-state`;
/** The cluster's state dir (scripts/cluster.sh): the admin kubeconfig and the daemons' pid files are in it. */
const CLUSTER_STATE = path.dirname(KUBECONFIG);

type Member = FleetOutputs["members"][number] & { host: string };
type Fleet = { members: Member[]; updatedReplicas: number };

/** The kubelet of `node`, as scripts/cluster.sh started it (its pid file), checked to still be a kubelet. */
function kubeletPid(node: string): number {
  const pid = Number(fs.readFileSync(path.join(CLUSTER_STATE, "pids", `kubelet-${node}.pid`), "utf8").trim());
  const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  if (comm !== "kubelet") throw new Error(`pid ${pid} of kubelet-${node}.pid is ${comm}, not the kubelet`);
  return pid;
}

async function nodeReady(node: string): Promise<string> {
  const object = await api().core.readNode({ name: node });
  return object.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "no report";
}

describe("a fleet on Kubernetes with one node's kubelet stopped", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  /** The kubelet stopped by this file (resumed in afterAll, and when the process exits, whatever happened). */
  let stoppedKubelet: number | undefined;
  /** Each member's acknowledged writes (session key -> value), by ordinal. */
  const acked = new Map<number, Map<string, number>>();

  const resumeKubelet = () => {
    if (stoppedKubelet === undefined) return;
    try {
      process.kill(stoppedKubelet, "SIGCONT");
    } catch {
      // already gone: nothing to resume
    }
    stoppedKubelet = undefined;
  };

  const fleet = (image: string) => {
    const { peId: _peId, ...template } = k8sSessionSpec("unused", NAMESPACE, cluster.storageClass, {
      image,
      // A memory limit is the pod's request: the scheduler weighs nodes by it (and the first pods spread).
      resources: { memoryMiB: 96 },
    });
    return { name: FLEET, replicas: REPLICAS, template, rollout: { maxUnavailable: 2 } };
  };
  const up = async () => fleetOutputs(await mustGroup(project, "up"), FLEET) as unknown as Fleet;

  async function write(member: Member): Promise<void> {
    const url = await podUrl(NAMESPACE, member.executableId);
    const last = new Map<string, number>();
    for (let i = 0; i < WRITES_PER_MEMBER; i++) {
      const key = `m${member.ordinal}-k${i}`;
      const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      last.set(key, i);
    }
    acked.set(member.ordinal, last);
  }

  /** Every acknowledged write of the member is in what its pod `podName` serves now. */
  async function expectWritesKept(ordinal: number, podName: string): Promise<void> {
    const res = await fetch(`${await podUrl(NAMESPACE, podName)}/sessions`, { signal: AbortSignal.timeout(5000) });
    const sessions = ((await res.json()) as { sessions: Record<string, { n: number }> }).sessions;
    const last = acked.get(ordinal)!;
    expect(last.size).toBe(WRITES_PER_MEMBER);
    for (const [key, value] of last) expect(sessions[key]?.n, `${FLEET}-${ordinal} ${key}`).toBe(value);
  }

  /** The member's one pod not being deleted (a member never has two). */
  async function podOf(peId: string): Promise<{ name: string; image: string; node?: string }> {
    const pods = (await podsOfPe(NAMESPACE, peId)).filter((p) => !p.metadata?.deletionTimestamp);
    expect(pods, peId).toHaveLength(1);
    const pod = pods[0]!;
    return { name: pod.metadata!.name!, image: pod.spec!.containers[0]!.image!, node: pod.spec?.nodeName };
  }

  beforeAll(async () => {
    useCluster();
    process.once("exit", resumeKubelet);
    await loadImages(V1, V2);
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-fleet-node-down", []);
    setFleets(project, [fleet(V1)]);
  });
  afterAll(async () => {
    // First the kubelet: the namespace's pods on its node are only removed once it runs again.
    resumeKubelet();
    await cluster?.remove();
  });

  it("the stopped node's members wait untouched (the up fails naming them), the other node's roll; the node back, the next up converges with every write kept", async () => {
    const start = await up();
    expect(start.members.every((m) => m.generation === 1 && m.imageRef === V1)).toBe(true);
    // Members on both nodes, from the claims' volumes (not only what reseat reports).
    const claimNodes = await Promise.all(start.members.map(async (m) => nodeOfClaim(NAMESPACE, claimName(m.peId))));
    expect(claimNodes).toEqual(start.members.map((m) => m.host));
    expect(new Set(claimNodes).size).toBe(2);
    await Promise.all(start.members.map((m) => write(m)));

    // Stop the kubelet of the node holding member 0's claim; wait until the API says the node is not Ready.
    const down = claimNodes[0]!;
    const waiting = start.members.filter((m) => m.host === down);
    const rolling = start.members.filter((m) => m.host !== down);
    stoppedKubelet = kubeletPid(down);
    process.kill(stoppedKubelet, "SIGSTOP");
    // The node controller marks it once the heartbeats are overdue (node-monitor grace period, ~55 s here).
    // From then on the pods there have 300 s (their default toleration of the unreachable taint) before the
    // node controller itself evicts them: this file resumes the kubelet well within that.
    await pollFor(`node ${down} no longer Ready after its kubelet stopped`, 180, async () => ((await nodeReady(down)) !== "True" ? true : undefined));

    setFleets(project, [fleet(V2)]);
    const watch = await watchMemberPods(start.members.map((m) => m.peId));
    const failed = await groupCli(project, "up");
    const seen = await watch.stop();
    const error = failed.doc.error ?? "";
    console.log(`kubernetes fleet, node ${down} not Ready: the up ended ${failed.code}:\n${error}`);
    expect(failed.code, error).toBe(1);
    expect(error).toContain(`reseat: fleet "${FLEET}": members wait for their node: `);
    for (const m of waiting) {
      expect(error).toContain(
        `${m.peId} waits (left as it runs, never moved to another node): node ${down}, which holds claim ${claimName(m.peId)}, is not Ready`,
      );
    }
    const listed = (label: string) => (new RegExp(`${label}: (.*)`).exec(error)?.[1] ?? "").split(", ").filter(Boolean);
    expect(
      listed("members wait for their node")
        .map((s) => s.replace(/\.$/, ""))
        .sort(),
    ).toEqual(waiting.map((m) => m.peId).sort());
    expect(listed("rolled \\(running the new spec\\)").sort()).toEqual(rolling.map((m) => m.peId).sort());

    // The other node's members rolled: a new pod on the same node, generation + 1, writes kept.
    const recorded = recordedFleetMembers(checkpointText(project));
    for (const m of rolling) {
      const pod = await podOf(m.peId);
      expect([pod.image, pod.node]).toEqual([V2, m.host]);
      expect(pod.name).not.toBe(m.executableId);
      expect([recorded[m.ordinal]!.generation, recorded[m.ordinal]!.updated]).toEqual([m.generation + 1, true]);
      await expectWritesKept(m.ordinal, pod.name);
    }
    // The stopped node's members untouched: the same pod (never marked for deletion, no other pod made
    // for them, as the watch saw it), the same generation, still serving their writes.
    for (const m of waiting) {
      expect(seen.podsOf.get(m.peId), m.peId).toEqual([m.executableId]);
      expect(seen.deletionsOf.get(m.peId) ?? [], m.peId).toEqual([]);
      const pod = await podOf(m.peId);
      expect([pod.name, pod.image, pod.node]).toEqual([m.executableId, V1, down]);
      expect([recorded[m.ordinal]!.generation, recorded[m.ordinal]!.updated]).toEqual([m.generation, false]);
      await expectWritesKept(m.ordinal, m.executableId);
    }

    // The node back: the next up rolls the members that waited; every member is one generation on.
    resumeKubelet();
    await pollFor(`node ${down} Ready again after its kubelet resumed`, 120, async () => ((await nodeReady(down)) === "True" ? true : undefined));
    const converged = await up();
    expect(converged.updatedReplicas).toBe(REPLICAS);
    for (const m of converged.members) {
      const before = start.members[m.ordinal]!;
      expect([m.generation, m.imageRef, m.host], m.peId).toEqual([before.generation + 1, V2, before.host]);
      const pod = await podOf(m.peId);
      expect([pod.name, pod.image, pod.node]).toEqual([m.executableId, V2, before.host]);
      expect(await nodeOfClaim(NAMESPACE, claimName(m.peId))).toBe(before.host);
      await expectWritesKept(m.ordinal, m.executableId);
    }
  });
});

/**
 * An independent observer on the API server: one pod watch over the namespace (from the list's
 * resourceVersion, so the starting point is exact). Records, per member, every pod seen for it and
 * every pod of it marked for deletion (a deletionTimestamp) or deleted.
 */
async function watchMemberPods(peIds: string[]): Promise<{ stop: () => Promise<{ podsOf: Map<string, string[]>; deletionsOf: Map<string, string[]> }> }> {
  const { core, config } = api();
  const watched = new Set(peIds);
  const podsOf = new Map<string, string[]>();
  const deletionsOf = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, peId: string, name: string) => {
    const names = map.get(peId) ?? [];
    if (!names.includes(name)) map.set(peId, [...names, name]);
  };
  const apply = (phase: string, pod: k8s.V1Pod) => {
    const peId = pod.metadata?.labels?.[LABELS.peId];
    if (!peId || !watched.has(peId)) return;
    const name = pod.metadata!.name!;
    add(podsOf, peId, name);
    if (phase === "DELETED" || pod.metadata?.deletionTimestamp) add(deletionsOf, peId, name);
  };
  const list = await core.listNamespacedPod({ namespace: NAMESPACE });
  for (const pod of list.items) apply("ADDED", pod);
  let failure: unknown;
  let stopping = false;
  const abort = await new k8s.Watch(config).watch(
    `/api/v1/namespaces/${NAMESPACE}/pods`,
    { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
    apply,
    (error: unknown) => {
      // Ended before stop (the server closed it, or an error): events may have been missed.
      if (!stopping) failure = error ?? "closed by the server";
    },
  );
  return {
    stop: async () => {
      stopping = true;
      abort.abort();
      if (failure) throw new Error(`the pod watch ended early: ${String(failure)}`);
      return { podsOf, deletionsOf };
    },
  };
}
