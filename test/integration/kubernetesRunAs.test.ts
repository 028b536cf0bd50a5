// Issue 21: runAsUser/runAsGroup on a Kubernetes PE. The spec's user reaches the pod (its securityContext:
// runAsUser, runAsGroup, fsGroup), the workload runs as it (asked inside the pod), writes what it
// acknowledges into a claim it owns through fsGroup (nothing is written into a claim from outside), and
// is replaced twice without a revert — for a directory store, no store and a PostgreSQL store. The
// replacement order is read from the API server's own event order (a watch on the PE's pods): the next
// pod exists (created, gated) before the serving pod is asked to stop. Real Pulumi CLI through the reseat
// CLI, the local two-node cluster, the test PostgreSQL.
import * as k8s from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ack, Project, ROOT, lastAcked, makeProject, mustSucceed, peOutputs, reseatCli, setSecret, setSpecs } from "../support/harness";
import { forwardToCluster, kubectl, pollFor } from "../support/kubernetes";
import { api, k8sSessionSpec, loadImages, makeTestNamespace, observePods, podUrl, readPod, useCluster } from "../support/kubernetesPe";
import { postgresSettings } from "../support/postgres";
import { LABELS } from "../../src/backend/backend";

const NAMESPACE = `reseat-it-krun-${process.pid}`;
const USER = { uid: 2345, gid: 2346 }; // neither root nor the image's USER (1000:1000)
const STORES = ["directory", "none", "postgres"] as const;
type StoreKind = (typeof STORES)[number];
const PES: Record<StoreKind, string> = { directory: `krun-dir-${process.pid}`, none: `krun-none-${process.pid}`, postgres: `krun-pg-${process.pid}` };
const pgEnv = postgresSettings();

/** What the API server told the watch about one pod, in the order it told it. */
interface PodEvent {
  type: string;
  pod: string;
  /** The pod has a deletionTimestamp: it was asked to stop. */
  deleting: boolean;
  gated: boolean;
}

/** Every event of the PE's pods, in the API server's order (one watch stream: etcd revision order). */
async function recordPodEvents(peId: string): Promise<{ events: PodEvent[]; stop: () => void }> {
  const events: PodEvent[] = [];
  const abort = await new k8s.Watch(api().config).watch(
    `/api/v1/namespaces/${NAMESPACE}/pods`,
    { labelSelector: `${LABELS.peId}=${peId}` },
    (type: string, pod: k8s.V1Pod) =>
      events.push({ type, pod: pod.metadata!.name!, deleting: !!pod.metadata?.deletionTimestamp, gated: !!pod.spec?.schedulingGates?.length }),
    () => undefined,
  );
  return { events, stop: () => abort.abort() };
}

/** PostgreSQL listens on 127.0.0.1 only: made reachable from the pods for this file (test/support/kubernetes.ts). */
function forwardPostgres(): ReturnType<typeof forwardToCluster> {
  return forwardToCluster(Number(pgEnv.RESEAT_PG_PORT));
}

/** Acknowledged writes (200 + seq) through the pod's address, one writer, `count` of them. */
async function writeAcked(url: string, prefix: string, count: number): Promise<Ack[]> {
  const acks: Ack[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${url}/sessions/${prefix}-${i % 5}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    acks.push({ key: `${prefix}-${i % 5}`, value: i, seq: ((await res.json()) as { seq: number }).seq, at: Date.now() });
  }
  return acks;
}

async function expectAllAcked(url: string, acks: Ack[]): Promise<void> {
  const { sessions } = (await (await fetch(`${url}/sessions`)).json()) as { sessions: Record<string, { n: number }> };
  for (const [key, value] of lastAcked(acks)) expect(sessions[key]?.n, key).toBeGreaterThanOrEqual(value);
}

/** The workload's uid, gid and groups, asked of its own process inside the pod (the image has no shell). */
async function idInPod(pod: string): Promise<{ uid: number; gid: number; groups: number[] }> {
  const out = await kubectl(
    "exec",
    "-n",
    NAMESPACE,
    pod,
    "-c",
    "workload",
    "--",
    "node",
    "-e",
    "process.stdout.write(JSON.stringify({uid: process.getuid(), gid: process.getgid(), groups: process.getgroups()}))",
  );
  return JSON.parse(out) as { uid: number; gid: number; groups: number[] };
}

describe("runAsUser/runAsGroup on Kubernetes: the pod runs as the spec's user, replaced twice, for every store", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let postgres: Awaited<ReturnType<typeof forwardPostgres>>;
  const acks: Record<StoreKind, Ack[]> = { directory: [], none: [], postgres: [] };
  const generations: Record<StoreKind, number> = { directory: 0, none: 0, postgres: 0 };

  const specs = (round: number) =>
    STORES.map((kind) =>
      k8sSessionSpec(PES[kind], NAMESPACE, cluster.storageClass, {
        runAsUser: USER.uid,
        runAsGroup: USER.gid,
        commitInterval: "500ms",
        env: { PORT: "8080", LISTEN_HOST: "0.0.0.0", ROUND: String(round) },
        ...(kind === "none" ? { persistentStore: { kind: "none" } } : {}),
        ...(kind === "postgres"
          ? {
              persistentStore: {
                kind: "postgres",
                host: postgres.host,
                port: postgres.port,
                database: pgEnv.RESEAT_PG_DATABASE,
                user: pgEnv.RESEAT_PG_USER,
                table: `krun_${process.pid}`,
                passwordSecret: "pgPassword",
              },
            }
          : {}),
      }),
    );

  beforeAll(async () => {
    useCluster();
    execFileSync("bash", [path.join(ROOT, "scripts", "postgres.sh"), "start"], { stdio: "ignore" });
    await loadImages("reseat-session-workload:v1");
    cluster = await makeTestNamespace(NAMESPACE);
    postgres = await forwardPostgres();
    project = makeProject("k8s-runas", specs(0));
    setSecret(project, "pgPassword", pgEnv.RESEAT_PG_PASSWORD!);
  });
  afterAll(async () => {
    if (project) await reseatCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
    await postgres?.close();
  });

  it("up: each pod carries the user as its securityContext and its workload runs as it; writes are acknowledged", async () => {
    const up = await mustSucceed(project, "up");
    for (const kind of STORES) {
      const pe = peOutputs(up, PES[kind]);
      expect(pe.generation, kind).toBe(1);
      generations[kind] = 1;
      const pod = await readPod(NAMESPACE, pe.executableName);
      expect(pod?.spec?.securityContext, kind).toMatchObject({ runAsUser: USER.uid, runAsGroup: USER.gid, fsGroup: USER.gid });
      expect(await idInPod(pe.executableName), kind).toMatchObject({ uid: USER.uid, gid: USER.gid, groups: expect.arrayContaining([USER.gid]) });
      const url = await podUrl(NAMESPACE, pe.executableName);
      acks[kind].push(...(await writeAcked(url, `r0-${kind}`, 40)));
      await expectAllAcked(url, acks[kind]);
    }
  });

  for (const round of [1, 2]) {
    it(`replacement ${round} (an env change): generation + 1, no revert, the writes kept, the old pod asked to stop only after the new one exists`, async () => {
      const before = Object.fromEntries(await Promise.all(STORES.map(async (kind) => [kind, (await podOf(PES[kind]))!] as const))) as Record<StoreKind, string>;
      const watches = await Promise.all(STORES.map((kind) => recordPodEvents(PES[kind])));
      const observers = await Promise.all(STORES.map((kind) => observePods(NAMESPACE, PES[kind])));
      setSpecs(project, specs(round));
      let up;
      try {
        up = await mustSucceed(project, "up");
      } finally {
        watches.forEach((w) => w.stop());
      }
      for (const [i, kind] of STORES.entries()) {
        const pe = peOutputs(up, PES[kind]);
        expect(pe.generation, kind).toBe(generations[kind] + 1);
        generations[kind] = pe.generation;
        expect(pe.reverted, kind).toBe(false);
        expect(pe.failedSpecHash, kind).toBeNull();
        // The API server's order: the new pod was created (prepared, gated) before the old pod got its
        // deletionTimestamp (the stop), and the old one stopped before the new one left its gate.
        const events = watches[i]!.events;
        const created = events.findIndex((e) => e.pod === pe.executableName && e.type === "ADDED");
        const stopAsked = events.findIndex((e) => e.pod === before[kind] && e.deleting);
        const ungated = events.findIndex((e) => e.pod === pe.executableName && !e.gated);
        expect(created, `${kind}: ${JSON.stringify(events)}`).toBeGreaterThan(-1);
        expect(events[created]!.gated, kind).toBe(true);
        expect(stopAsked, `${kind}: ${JSON.stringify(events)}`).toBeGreaterThan(created);
        expect(ungated, kind).toBeGreaterThan(stopAsked);
        expect((await observers[i]!.stop()).maxRunning, kind).toBeLessThanOrEqual(1);
        expect(await readPod(NAMESPACE, before[kind]), kind).toBeUndefined();
        // Still the spec's user, and every acknowledged write (of every round so far) is there.
        expect(await idInPod(pe.executableName), kind).toMatchObject({ uid: USER.uid, gid: USER.gid });
        const url = await podUrl(NAMESPACE, pe.executableName);
        await expectAllAcked(url, acks[kind]);
        acks[kind].push(...(await writeAcked(url, `r${round}-${kind}`, 20)));
        await expectAllAcked(url, acks[kind]);
      }
    });
  }

  it("the stores got commits from the non-root workload (directory and PostgreSQL)", async () => {
    const outputs = await pollFor("commits of both stores in the outputs", 120, async () => {
      const up = await mustSucceed(project, "up");
      const pes = STORES.map((kind) => peOutputs(up, PES[kind]));
      return pes[0]!.lastCommit && pes[2]!.lastCommit ? pes : undefined;
    });
    expect(outputs[0]!.lastCommitError).toBeNull();
    expect(outputs[2]!.lastCommitError).toBeNull();
    expect(outputs.map((pe) => pe.generation)).toEqual(STORES.map((kind) => generations[kind]));
  });
});

/** The name of the PE's one pod. */
async function podOf(peId: string): Promise<string | undefined> {
  const pods = (await api().core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `${LABELS.peId}=${peId}` })).items;
  return pods.length === 1 ? pods[0]!.metadata!.name : undefined;
}
