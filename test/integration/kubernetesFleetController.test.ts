// Issue 23.2: the failure controller covers a fleet on Kubernetes, and `reseat status` lists its members.
// A fleet of 3 members (one Pulumi resource, a claim and a pod per member) on the local two-node cluster,
// made by the real reseat CLI on the real Pulumi CLI; `reseat watch --kubernetes` in its own process. One
// member's pod is force-deleted while writers load it, another's workload is killed at the same moment: the
// controller repairs both (a new pod on the same node and claim, generation + 1), no acknowledged write is
// lost, and an independent pod watch on the API server never sees two pods of a member running at once.
// The third member is left alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ack, CLI, Project, lastAcked, makeProject, runProcess } from "../support/harness";
import { FleetOutputs, fleetOutputs, mustGroup, setFleets } from "../support/group";
import { KUBECONFIG, kubectl, pollFor } from "../support/kubernetes";
import {
  SESSION_PORT,
  claimOf,
  loadImages,
  makeTestNamespace,
  nodeOfClaim,
  observePods,
  podUrl,
  podsOfPe,
  readPod,
  startK8sController,
  useCluster,
  workloadPids,
} from "../support/kubernetesPe";
import { LABELS } from "../../src/backend/backend";

const FLEET = `kfc${process.pid % 100000}`;
const NAMESPACE = `reseat-it-kfc-${process.pid}`;
const REPLICAS = 3;

/** Member outputs as the fleet reports them on Kubernetes: the executable is the pod, the host its node. */
type K8sMember = FleetOutputs["members"][number] & { host: string };

/** The session-context service (state library inside) as a fleet template on Kubernetes. */
function k8sSessionFleet(storageClass: string) {
  return {
    name: FLEET,
    replicas: REPLICAS,
    template: {
      image: "reseat-session-workload:v1",
      env: { PORT: String(SESSION_PORT), LISTEN_HOST: "0.0.0.0" },
      ports: [{ container: SESSION_PORT }],
      commitInterval: "1s",
      stop: { graceSeconds: 3 },
      readiness: { httpGet: { port: SESSION_PORT, path: "/healthz" }, timeout: "90s" },
      kubernetes: {
        namespace: NAMESPACE,
        storageClassName: storageClass,
        size: "64Mi",
        status: { port: SESSION_PORT, path: "/status" },
        store: { storageClassName: storageClass, size: "64Mi" },
      },
    },
    rollout: { maxUnavailable: REPLICAS, partition: 0 },
  };
}

/** Writers that PUT sessions through the pod's address; only acknowledged (200 + seq) writes count. They end at the first failure. */
function startWriters(url: string, prefix: string): { acks: Ack[]; stop: () => Promise<void> } {
  const acks: Ack[] = [];
  let stopped = false;
  const loops = [0, 1].map(async (writer) => {
    for (let i = 0; !stopped; i++) {
      const key = `${prefix}-${writer}`;
      try {
        const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(3000) });
        if (res.status !== 200) return;
        acks.push({ key, value: i, seq: ((await res.json()) as { seq: number }).seq, at: Date.now() });
      } catch {
        return;
      }
    }
  });
  return {
    acks,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function sessionsAt(url: string): Promise<Record<string, { n: number }>> {
  const res = await fetch(`${url}/sessions`);
  return ((await res.json()) as { sessions: Record<string, { n: number }> }).sessions;
}

const isReady = (pod: { status?: { conditions?: { type: string; status: string }[] } }) =>
  !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

interface StatusRow {
  peId: string;
  group: string | null;
  generation: number | null;
  state: string;
  volume: string | null;
  commitLagMs: number | null;
  restarts: number;
  lastCommit: { seq: number } | null;
  recordErrors: string[];
}

async function reseatStatus(): Promise<StatusRow[]> {
  const result = await runProcess(process.execPath, [CLI, "status", "--json", "--kubernetes", NAMESPACE], { ...process.env, KUBECONFIG });
  if (result.code !== 0) throw new Error(`reseat status failed (${result.code}): ${result.stderr}${result.stdout}`);
  return (JSON.parse(result.stdout) as { processingElements: StatusRow[] }).processingElements;
}

describe("the failure controller and `reseat status` on a Kubernetes fleet", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let members: K8sMember[] = [];

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1");
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-fleet-ctl", []);
    setFleets(project, [k8sSessionFleet(cluster.storageClass)]);
  });
  // No `destroy`: it would only remove the pods (a fleet keeps its claims), and removing the test's
  // namespace removes pods, claims and records alike (the class deletes their volumes) — a Pulumi run less.
  afterAll(async () => {
    await cluster?.remove();
  });

  it("up: each member a claim and a pod; `reseat status` lists them with their fleet, generation and commit lag", async () => {
    members = fleetOutputs(await mustGroup(project, "up"), FLEET).members as K8sMember[];
    expect(members.map((m) => [m.peId, m.generation])).toEqual(Array.from({ length: REPLICAS }, (_, ordinal) => [`${FLEET}-${ordinal}`, 1]));
    for (const member of members) {
      expect((await readPod(NAMESPACE, member.executableId))?.spec?.nodeName).toBe(member.host);
      expect((await claimOf(NAMESPACE, `reseat-${member.peId}-state`))?.status?.phase).toBe("Bound");
    }
    const rows = await pollFor("status with both members' commit status", 30, async () => {
      const listed = (await reseatStatus()).filter((r) => r.group === FLEET);
      return listed.length === REPLICAS && listed.every((r) => r.commitLagMs !== null) ? listed : undefined;
    });
    expect(rows.map((r) => [r.peId, r.group, r.generation, r.state, r.volume, r.recordErrors])).toEqual(
      members.map((m) => [m.peId, FLEET, 1, "running", `reseat-${m.peId}-state`, []]),
    );
    for (const row of rows) expect(row.commitLagMs).toBeGreaterThanOrEqual(0);
  });

  it("reseat watch: one member's pod force-deleted under write load, another's workload killed → each a new pod on its node and claim, generation + 1, no acknowledged write lost, never two pods on a claim; the third left alone", async () => {
    const [victim, crashed, bystander] = members as [K8sMember, K8sMember, K8sMember];
    for (const member of [victim, crashed]) expect(await nodeOfClaim(NAMESPACE, `reseat-${member.peId}-state`)).toBe(member.host);
    const controller = startK8sController(NAMESPACE);
    const observers = await Promise.all([victim, crashed].map((member) => observePods(NAMESPACE, member.peId)));
    let acks: Ack[] = [];
    try {
      await controller.ready;
      const writers = startWriters(await podUrl(NAMESPACE, victim.executableId), "load");
      await pollFor("writes before the force delete", 30, async () => (writers.acks.length >= 30 ? true : undefined));
      // Under load: the writers keep writing until the pod stops answering. At the same moment another
      // member's workload dies (SIGKILL: its container ends, its pod fails).
      const pids = workloadPids(crashed.peId);
      expect(pids.length).toBe(1);
      process.kill(pids[0]!, "SIGKILL");
      await kubectl("-n", NAMESPACE, "delete", "pod", victim.executableId, "--force", "--grace-period=0");
      const repaired = await Promise.all(
        [victim, crashed].map((member) =>
          pollFor(`a new pod of ${member.peId} Ready`, 60, async () =>
            (await podsOfPe(NAMESPACE, member.peId)).find((p) => p.metadata?.name !== member.executableId && isReady(p)),
          ),
        ),
      );
      await writers.stop();
      acks = writers.acks;
      for (const [i, member] of [victim, crashed].entries()) {
        expect(repaired[i]!.metadata?.name).toBe(`reseat-${member.peId}-g2`);
        expect(repaired[i]!.spec?.nodeName).toBe(member.host);
        expect(repaired[i]!.spec?.volumes?.find((v) => v.name === "state")?.persistentVolumeClaim?.claimName).toBe(`reseat-${member.peId}-state`);
        expect((await claimOf(NAMESPACE, `reseat-${member.peId}-state`))?.metadata?.annotations?.[LABELS.generation]).toBe("2");
      }
      const sessions = await sessionsAt(await podUrl(NAMESPACE, repaired[0]!.metadata!.name!));
      expect(acks.length).toBeGreaterThanOrEqual(30);
      for (const [key, value] of lastAcked(acks)) expect(sessions[key]?.n, key).toBeGreaterThanOrEqual(value);
      await pollFor("the controller's reseats reported", 30, async () =>
        controller.events.filter((e) => e.kind === "reseated").length >= 2 ? true : undefined,
      );
      const reseated = controller.events.filter((e) => e.kind === "reseated").map((e) => [e.peId, e.generation]);
      expect(reseated.sort()).toEqual([
        [victim.peId, 2],
        [crashed.peId, 2],
      ]);
    } finally {
      await controller.stop();
    }
    for (const observer of observers) expect((await observer.stop()).maxRunning).toBe(1);
    // The third member was left alone: the same pod, still Ready.
    const untouched = await podsOfPe(NAMESPACE, bystander.peId);
    expect(untouched.map((p) => [p.metadata?.name, isReady(p)])).toEqual([[bystander.executableId, true]]);
    const rows = (await reseatStatus()).filter((r) => r.group === FLEET);
    // The controller's repairs are in the members' records: status shows them.
    expect(rows.map((r) => [r.peId, r.generation, r.state, r.restarts])).toEqual([
      [victim.peId, 2, "running", 1],
      [crashed.peId, 2, "running", 1],
      [bystander.peId, 1, "running", 0],
    ]);
  });
});
