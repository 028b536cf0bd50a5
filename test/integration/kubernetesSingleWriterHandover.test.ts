// Single writer on the local Kubernetes cluster, proven from outside reseat (the same observer as
// singleWriterHandover.test.ts: /proc/locks for the claim's writer lock, every process's open state.db, the
// workloads' reports): a pod force-deleted under write load while `reseat watch` repairs it, and a standby parked
// beside a force-deleted pod's lingering process. Every acknowledged write is kept; never two writers.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, lastAcked, makeProject, mustSucceed, reseatCli, setSpecs, type Ack, type Project } from "../support/harness";
import { kubectl, pollFor } from "../support/kubernetes";
import { k8sSessionSpec, loadImages as loadK8sImages, makeTestNamespace, podUrl, podsOfPe, startK8sController, useCluster } from "../support/kubernetesPe";
import { kubernetesClaimDir, startWriterSampler, writerLockHolders } from "../support/writerObserver";
import { expectSingleWriter, holderSequence, until } from "../support/writerVerdicts";

const IMAGE = "reseat-session-workload:v1";
const RUN = `it-swh-${process.pid}`;

// Issue 22, paragraph 2: after `kubectl delete pod --force --grace-period=0` under write load, the force-deleted
// pod's workload kept running (and acknowledging writes) while its successor's already ran on the same claim. With
// the writer lock the successor's workload must not open the state until the old process is gone. The local
// cluster runs on this host: the claim's volume is a directory here, observed like a Docker volume.
describe("on the local Kubernetes cluster: a pod force-deleted under write load, observed", () => {
  const peId = `${RUN}-k8s`.replace(/^it-/, "k");
  const namespace = `reseat-it-swh-${process.pid}`;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let project: Project;

  beforeAll(async () => {
    useCluster();
    await loadK8sImages(IMAGE);
    cluster = await makeTestNamespace(namespace);
    project = makeProject("single-writer-k8s", [k8sSessionSpec(peId, namespace, cluster.storageClass, { handover: "standby", commitInterval: "10m" })]);
    await mustSucceed(project, "up");
  });
  afterAll(async () => {
    stopped = true;
    await Promise.all(writers);
    await reseatCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
  });

  /**
   * The PE's pod (not `except`) whose workload answers its readiness probe, with its address: ContainersReady, not the
   * pod's Ready, which also waits for reseat's readiness gate (set by the routine after a take-over; the routine is
   * held at a fault point in one case here). The writers talk to the pod's address directly.
   */
  const readyPod = (except?: string) =>
    pollFor("a pod of the PE with its workload ready", 180, async () => {
      const pod = (await podsOfPe(namespace, peId)).find(
        (p) =>
          p.metadata?.name !== except &&
          !p.metadata?.deletionTimestamp &&
          p.status?.conditions?.some((c) => c.type === "ContainersReady" && c.status === "True"),
      );
      return pod ? { name: pod.metadata!.name!, url: await podUrl(namespace, pod.metadata!.name!) } : undefined;
    }).catch(async (error: Error) => {
      // What the pods say, for the failure's message.
      const pods = await kubectl("-n", namespace, "get", "pods", "-o", "wide").catch((e: Error) => e.message);
      const logs = await Promise.all(
        (await podsOfPe(namespace, peId)).map(
          async (p) => `--- ${p.metadata?.name}\n${await kubectl("-n", namespace, "logs", p.metadata!.name!, "--tail=20").catch((e: Error) => e.message)}`,
        ),
      );
      throw new Error(`${error.message}\n${pods}\n${logs.join("\n")}`);
    });

  const acks: Ack[] = [];
  let url = "";
  let stopped = false;
  let writers: Promise<void>[] = [];
  /** Writers through whichever pod the test currently aims at (`url`); only 200s with a seq count as acknowledged. */
  const startK8sWriters = () => {
    writers = [0, 1, 2].map(async (w) => {
      for (let i = 0; !stopped;) {
        const key = `k8s-${w}`;
        const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(2000) }).catch(
          () => undefined,
        );
        if (res?.status === 200) {
          acks.push({ key, value: i, seq: ((await res.json()) as { seq: number }).seq, at: Date.now() });
          i++;
        } else await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
  };

  /** One force delete of the serving pod, observed: never two writers; the successor holds the lock only after the old process let go. */
  async function forceDeleteObserved(dir: string, pod: { name: string }, what: string, beforeDelete?: () => Promise<void>) {
    const sampler = await startWriterSampler(dir);
    try {
      const before = acks.length;
      await until("writes acknowledged by the pod", () => (acks.length >= before + 50 ? true : undefined));
      await beforeDelete?.();
      const [oldPid] = writerLockHolders(dir);
      expect(oldPid, "the serving pod's workload holds the claim's writer lock").toBeDefined();
      const deletedAt = Date.now();
      await kubectl("-n", namespace, "delete", "pod", pod.name, "--force", "--grace-period=0");
      const next = await readyPod(pod.name);
      url = next.url;
      const acked = acks.length;
      await until("writes acknowledged by the successor", () => (acks.length > acked + 20 ? true : undefined));
      const report = await sampler.stop();
      expectSingleWriter(report);
      const sequence = holderSequence(report);
      expect(sequence[0]).toBe(oldPid);
      expect(sequence).toHaveLength(2);
      const [oldSeen, newSeen] = sequence.map((pid) => report.processes.find((p) => p.pid === pid)!);
      // The successor took the lock, and opened state.db, only after the old process let go of both.
      expect(newSeen!.heldAt![0]).toBeGreaterThan(oldSeen!.heldAt![1]);
      expect(newSeen!.wrote![0]).toBeGreaterThan(oldSeen!.wrote![1]);
      // Did the successor's workload run (waiting on the lock file) while the old process still held the lock?
      const overlapped = newSeen!.waitedAt !== null && newSeen!.waitedAt[0] < oldSeen!.heldAt![1];
      const lastOldAck = acks.filter((a) => a.at >= deletedAt && a.at <= oldSeen!.heldAt![1]).reduce((max, a) => Math.max(max, a.at), deletedAt);
      console.log(
        `${what}: the force-deleted pod's process held the lock ${Math.round(oldSeen!.heldAt![1] - deletedAt)} ms after the delete (acknowledged writes until ${lastOldAck - deletedAt} ms); ` +
          (overlapped
            ? `its successor's workload waited on the lock beside it for ${Math.round(oldSeen!.heldAt![1] - newSeen!.waitedAt![0])} ms and took it ${Math.round(newSeen!.heldAt![0] - oldSeen!.heldAt![1])} ms after it was gone`
            : `its successor's workload took it ${Math.round(newSeen!.heldAt![0] - oldSeen!.heldAt![1])} ms after that, not there before (no overlap)`),
      );
      return { overlapped, next };
    } catch (error) {
      await sampler.stop().catch(() => undefined);
      throw error;
    }
  }

  async function expectAllServed(): Promise<void> {
    const res = await fetch(`${url}/sessions`);
    const served = ((await res.json()) as { sessions: Record<string, { n: number }> }).sessions;
    expect(acks.length).toBeGreaterThan(0);
    for (const [key, value] of lastAcked(acks)) expect(served[key]?.n, `acknowledged ${key} = ${value}`).toBeGreaterThanOrEqual(value);
  }

  it("reseat watch re-creates a force-deleted pod (3 rounds): the successor's workload never opens the state while the old process holds it", async () => {
    const dir = await kubernetesClaimDir(namespace, `reseat-${peId}-state`);
    const controller = startK8sController(namespace);
    try {
      await controller.ready;
      let pod = await readyPod();
      url = pod.url;
      startK8sWriters();
      for (let round = 0; round < 3; round++) pod = (await forceDeleteObserved(dir, pod, `controller round ${round}`)).next;
    } finally {
      await controller.stop();
    }
    await expectAllServed();
  });

  it("a standby parked beside the serving pod when it is force-deleted waits until the old process is gone, then serves every acknowledged write", async () => {
    const dir = await kubernetesClaimDir(namespace, `reseat-${peId}-state`);
    await mustSucceed(project, "refresh"); // the controller's pods of the test before
    const pod = await readyPod();
    url = pod.url;
    // An up whose standby parks beside the serving pod, held there (fault point after-parked): then the force delete.
    setSpecs(project, [
      k8sSessionSpec(peId, namespace, cluster.storageClass, {
        handover: "standby",
        commitInterval: "10m",
        env: { PORT: "8080", LISTEN_HOST: "0.0.0.0", RELEASE: "2" },
      }),
    ]);
    const marker = path.join(project.dir, "fault-after-parked-k8s");
    const child = spawn(process.execPath, [CLI, "up", "--cwd", project.dir, "--stack", project.stack, "--json"], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, RESEAT_FAULT_POINT: "after-parked", RESEAT_FAULT_MARKER: marker },
    });
    try {
      await until("the standby parked (fault point after-parked)", () => (fs.existsSync(marker) ? true : undefined), 180_000);
      const { overlapped } = await forceDeleteObserved(dir, pod, "standby parked beside it");
      expect(overlapped, "the standby waited on the lock beside the force-deleted pod's process").toBe(true);
    } finally {
      const providerPid = fs.existsSync(marker) ? Number(fs.readFileSync(marker, "utf8").split(" ")[1]) : undefined;
      process.kill(-child.pid!, "SIGKILL");
      if (providerPid) process.kill(providerPid, "SIGKILL");
    }
    await mustSucceed(project, "cancel");
    await mustSucceed(project, "up", "--refresh", "--clear-pending-creates");
    url = (await readyPod()).url;
    stopped = true;
    await Promise.all(writers);
    await expectAllServed();
  });
});
