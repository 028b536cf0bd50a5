// Issue 23: a fleet on Kubernetes — N members in ONE Pulumi resource, each a claim (made by the fleet
// through the backend, kept on scale-down) and one pod per generation on its claim's node. Real reseat
// CLI (real Pulumi CLI) running stacks/groups.js, the local two-node cluster, the session workload;
// availability observed independently by a pod watch on the API server; state read back from each
// member's workload and from the stack's checkpoint. One stack is reused across the cases (CI budget).
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliResult, Project, checkpointText, makeProject } from "../support/harness";
import { FleetOutputs, fleetOutputs, groupCli, mustGroup, recordedFleetMembers, setFleets } from "../support/group";
import { api, claimOf, k8sSessionSpec, loadImages, makeTestNamespace, podUrl, podsOfPe, useCluster } from "../support/kubernetesPe";
import { LABELS } from "../../src/backend/backend";

const FLEET = `kf${process.pid % 100000}`;
const NAMESPACE = `reseat-it-kfleet-${process.pid}`;
const REPLICAS = 6;
const WRITES_PER_MEMBER = 17; // ~100 acknowledged writes over the fleet
const V1 = "reseat-session-workload:v1";
const V2 = "reseat-session-workload:v2";
const ids = (n: number) => Array.from({ length: n }, (_, o) => `${FLEET}-${o}`);
const claimName = (ordinal: number) => `reseat-${FLEET}-${ordinal}-state`;

type Member = FleetOutputs["members"][number] & { host: string };
type Fleet = { members: Member[]; updatedReplicas: number };

interface Overrides {
  image?: string;
  replicas?: number;
  maxUnavailable?: number;
  command?: string[];
}

describe("a fleet on Kubernetes: one resource, a claim and a pod per member", () => {
  let project: Project;
  let invalidPreview: Promise<CliResult> | undefined;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let current: Fleet;
  /** Each member's last acknowledged write (session key -> value), by ordinal. */
  const acked = new Map<number, Map<string, number>>();
  const claimUids = new Map<number, string>();

  const fleet = (o: Overrides = {}) => {
    const { peId: _peId, ...template } = k8sSessionSpec("unused", NAMESPACE, cluster.storageClass, {
      image: o.image ?? V1,
      // A memory limit is the pod's request: the scheduler weighs nodes by it (and the first pods spread).
      resources: { memoryMiB: 96 },
      ...(o.command ? { command: o.command } : {}),
    });
    return { name: FLEET, replicas: o.replicas ?? REPLICAS, template, rollout: { maxUnavailable: o.maxUnavailable ?? 2 } };
  };
  /** Case (d): four fleets, each with one malformed Kubernetes-related field. */
  const invalidFleets = () => {
    const spec = (suffix: string, template: Record<string, unknown>) => {
      const base = fleet();
      return { ...base, name: `${FLEET}${suffix}`, template: { ...base.template, ...template } };
    };
    const k8sOf = fleet().template.kubernetes as Record<string, unknown>;
    return [
      spec("n", { kubernetes: { ...k8sOf, namespace: `${NAMESPACE}-{{ordinal}}` } }),
      spec("p", { persistentStore: { kind: "postgres", host: "127.0.0.1", database: "d", user: "u", password: "p" } }),
      spec("s", { kubernetes: { ...k8sOf, size: "lots" } }),
      spec("d", { volume: { driver: "local" } }),
    ];
  };
  const up = async () => fleetOutputs(await mustGroup(project, "up"), FLEET) as unknown as Fleet;
  const urlOf = (member: Member) => podUrl(NAMESPACE, member.executableId);

  async function write(member: Member, count: number): Promise<void> {
    const url = await urlOf(member);
    const last = acked.get(member.ordinal) ?? new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const key = `m${member.ordinal}-k${i % 3}`;
      const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      last.set(key, i);
    }
    acked.set(member.ordinal, last);
  }

  /** Every acknowledged write of the member is in what its workload serves now. */
  async function expectWritesKept(member: Member): Promise<void> {
    const res = await fetch(`${await urlOf(member)}/sessions`, { signal: AbortSignal.timeout(5000) });
    const sessions = ((await res.json()) as { sessions: Record<string, { n: number }> }).sessions;
    const last = acked.get(member.ordinal)!;
    expect(last.size).toBeGreaterThan(0);
    for (const [key, value] of last) expect(sessions[key]?.n, `${member.peId} ${key}`).toBe(value);
  }

  /** The image and args of the member's one pod (a member never has two). */
  async function podOf(peId: string): Promise<{ name: string; image: string; args?: string[]; node?: string }> {
    const pods = (await podsOfPe(NAMESPACE, peId)).filter((p) => !p.metadata?.deletionTimestamp);
    expect(pods, peId).toHaveLength(1);
    const pod = pods[0]!;
    return { name: pod.metadata!.name!, image: pod.spec!.containers[0]!.image!, args: pod.spec!.containers[0]!.args, node: pod.spec?.nodeName };
  }

  beforeAll(async () => {
    useCluster();
    await loadImages(V1, V2);
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-fleet", []);
    setFleets(project, [fleet()]);
    // Case (d)'s preview runs beside the first cases (its own stack; it must fail before touching anything).
    const bad = makeProject("k8s-fleet-invalid", []);
    setFleets(bad, invalidFleets());
    invalidPreview = groupCli(bad, "preview");
  });
  afterAll(async () => {
    // The namespace's removal takes the pods, claims and records (no Pulumi run for it: CI budget).
    await invalidPreview?.catch(() => undefined);
    await cluster?.remove();
  });

  it("(a) 6 members on both nodes; an image change with maxUnavailable 2: never more than 2 members without a Ready pod (seen by a pod watch), writes, claim and node kept, generation + 1", async () => {
    current = await up();
    expect(current.members.map((m) => m.peId)).toEqual(ids(REPLICAS));
    expect(current.members.every((m) => m.generation === 1 && m.updated && m.imageRef === V1)).toBe(true);
    expect(new Set(current.members.map((m) => m.host)).size).toBe(2);
    // Claims only: no per-member Pulumi resource.
    const types = (JSON.parse(checkpointText(project)) as { checkpoint: { latest: { resources: { type: string }[] } } }).checkpoint.latest.resources.map(
      (r) => r.type,
    );
    expect(types.filter((t) => t.includes("reseat") || t.includes("kubernetes")).sort()).toEqual([
      "pulumi-nodejs:dynamic/reseat:Fleet",
      "reseat:index:ProcessingElementFleet",
    ]);
    for (const member of current.members) {
      const claim = await claimOf(NAMESPACE, claimName(member.ordinal));
      expect(claim?.metadata?.annotations?.[LABELS.owner]).toBe(`reseat/${project.stack}/${member.peId}`);
      claimUids.set(member.ordinal, claim!.metadata!.uid!);
      expect(await claimOf(NAMESPACE, `${claimName(member.ordinal)}-store`)).toBeDefined();
    }
    await Promise.all(current.members.map((m) => write(m, WRITES_PER_MEMBER)));

    // Preview: one line per changing member, highest ordinal first; nothing on the cluster changes.
    setFleets(project, [fleet({ image: V2 })]);
    const preview = await mustGroup(project, "preview");
    const at = ids(REPLICAS)
      .reverse()
      .map((id, i) => preview.stderr.indexOf(`replacing member ${id} (${i + 1} of ${REPLICAS}): image ${V1} -> ${V2}`));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    for (const member of current.members) expect((await podOf(member.peId)).name).toBe(member.executableId);

    const watch = await watchReadyMembers(ids(REPLICAS));
    const rolled = await up();
    const seen = await watch.stop();
    expect(seen.maxWithoutReady).toBeGreaterThanOrEqual(1);
    expect(seen.maxWithoutReady).toBeLessThanOrEqual(2);
    expect(rolled.updatedReplicas).toBe(REPLICAS);
    for (const member of rolled.members) {
      const before = current.members[member.ordinal]!;
      expect(member.generation).toBe(before.generation + 1);
      expect(member.imageRef).toBe(V2);
      expect(member.host).toBe(before.host);
      const pod = await podOf(member.peId);
      expect([pod.image, pod.node]).toEqual([V2, before.host]);
      expect((await claimOf(NAMESPACE, claimName(member.ordinal)))?.metadata?.uid).toBe(claimUids.get(member.ordinal));
      await expectWritesKept(member);
    }
    current = rolled;
  });

  it("(b) a template that breaks member 2 at start: the up fails naming it, the rollout stops, member 2 serves its previous spec, members not begun untouched; the fix converges", async () => {
    // maxUnavailable 2: chains 5-3-1 and 4-2-0. Member 0 waits for 2, so it is never begun; whether 1
    // began depends on when 3 was ready: the error says which, and the cluster must agree with it.
    const broken = ["node", "-e", "if ({{ordinal}} === 2) { console.error('member {{peId}} refuses to start'); process.exit(3) } require('/app/server.js')"];
    setFleets(project, [fleet({ image: V2, command: broken })]);
    const failed = await groupCli(project, "up");
    expect(failed.code).toBe(1);
    const error = failed.doc.error ?? "";
    expect(error).toContain(`fleet "${FLEET}": the rollout stopped at ${FLEET}-2`);
    expect(error).toMatch(/exited with code 3 before it was ready/);
    expect(error).toContain(`member ${FLEET}-2 refuses to start`);
    const listed = (label: string) => (new RegExp(`${label}: (.*)`).exec(error)?.[1] ?? "").split(", ").filter(Boolean);
    const rolled = listed("rolled \\(running the new spec\\)");
    const notBegun = listed("not begun \\(running what they ran before\\)");
    expect(rolled).toEqual(expect.arrayContaining([`${FLEET}-5`, `${FLEET}-4`]));
    expect(notBegun).toContain(`${FLEET}-0`);
    expect([...rolled, ...notBegun, `${FLEET}-2`].sort()).toEqual(ids(REPLICAS).sort());
    const ordinalOf = (peId: string) => Number(peId.slice(FLEET.length + 1));
    for (const peId of rolled) {
      const o = String(ordinalOf(peId));
      expect((await podOf(peId)).args).toEqual(broken.map((a) => a.replace("{{ordinal}}", o).replace("{{peId}}", peId)));
    }
    // Member 2 serves its previous spec again (no command), with its writes; members not begun untouched.
    const two = await podOf(`${FLEET}-2`);
    expect([two.image, two.args, two.node]).toEqual([V2, undefined, current.members[2]!.host]);
    for (const peId of notBegun) expect((await podOf(peId)).name).toBe(current.members[ordinalOf(peId)]!.executableId);
    // Pulumi recorded the members as they run now (a partial update), not the previous deployment.
    const recorded = recordedFleetMembers(checkpointText(project));
    expect(recorded.map((m) => [m.peId, m.updated])).toEqual(ids(REPLICAS).map((peId) => [peId, rolled.includes(peId)]));
    expect(recorded[2]!.reverted).toBe(true);
    await expectWritesKept({ ...current.members[2]!, executableId: two.name });

    setFleets(project, [fleet({ image: V2 })]);
    const fixed = await up();
    expect(fixed.updatedReplicas).toBe(REPLICAS);
    for (const member of fixed.members) {
      const pod = await podOf(member.peId);
      expect([pod.image, pod.args, pod.node]).toEqual([V2, undefined, current.members[member.ordinal]!.host]);
      await expectWritesKept(member);
    }
    // Kept as they ran: those never begun.
    for (const peId of notBegun) expect(fixed.members[ordinalOf(peId)]!.executableId).toBe(current.members[ordinalOf(peId)]!.executableId);
    current = fixed;
  });

  it("(c) scale 6 -> 3 -> 6: the members' claims are kept and adopted with their data; each member's checkpoint record is under 1 KB", async () => {
    const size6 = checkpointText(project).length;
    setFleets(project, [fleet({ image: V2, replicas: 3 })]);
    const three = await up();
    expect(three.members.map((m) => m.executableId)).toEqual(current.members.slice(0, 3).map((m) => m.executableId));
    for (const o of [3, 4, 5]) {
      expect(await podsOfPe(NAMESPACE, `${FLEET}-${o}`)).toHaveLength(0);
      expect((await claimOf(NAMESPACE, claimName(o)))?.metadata?.uid).toBe(claimUids.get(o));
    }
    const size3 = checkpointText(project).length;
    setFleets(project, [fleet({ image: V2 })]);
    const six = await up();
    expect(six.members.map((m) => m.peId)).toEqual(ids(REPLICAS));
    for (const o of [3, 4, 5]) {
      const member = six.members[o]!;
      expect(member.generation).toBe(current.members[o]!.generation + 1);
      expect(member.host).toBe(current.members[o]!.host);
      expect((await claimOf(NAMESPACE, claimName(o)))?.metadata?.uid).toBe(claimUids.get(o));
      await expectWritesKept(member);
    }
    // The checkpoint grows by a member's short observation, not by resources per member.
    const perMember = (checkpointText(project).length - size3) / 3;
    expect(perMember).toBeLessThanOrEqual(1024);
    expect(Math.abs(checkpointText(project).length - size6)).toBeLessThan(3 * 1024);
    for (const m of recordedFleetMembers(checkpointText(project))) expect(JSON.stringify(m).length).toBeLessThanOrEqual(1024);
    console.log(`kubernetes fleet: ${perMember.toFixed(0)} bytes of checkpoint per member`);
    current = six;
  });

  it("(d) malformed fleet specs with Kubernetes fields fail preview naming the field; nothing is created in the namespace", async () => {
    const preview = await invalidPreview!;
    const name = (s: string) => `${FLEET}${s}`;
    expect(preview.code).toBe(1);
    expect(preview.doc.error).toContain(`fleet "${name("n")}":\n  - template.kubernetes.namespace: expected one engine for every member of a fleet`);
    expect(preview.doc.error).toContain(`fleet "${name("p")}":\n  - template.persistentStore.kind: expected "none" or "directory" in a fleet`);
    expect(preview.doc.error).toMatch(new RegExp(`fleet "${name("s")}":\\n  - template\\.kubernetes\\.size: expected a storage size`));
    expect(preview.doc.error).toMatch(new RegExp(`fleet "${name("d")}":\\n  - template\\.volume\\.driver: a Docker-only field`));
    const made = await api().core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
    const pods = await api().core.listNamespacedPod({ namespace: NAMESPACE });
    const theirs = (n?: string) => ["n", "p", "s", "d"].some((s) => n?.includes(`${name(s)}-`));
    expect([...made.items, ...pods.items].filter((o) => theirs(o.metadata?.name))).toEqual([]);
  });
});

/**
 * An independent observer on the API server: one pod watch over the namespace (from the list's
 * resourceVersion, so the starting point is exact), a member counting as available while one of its
 * pods is Ready and not being deleted. Records the most members ever without a Ready pod at once.
 */
async function watchReadyMembers(peIds: string[]): Promise<{ stop: () => Promise<{ maxWithoutReady: number }> }> {
  const { core, config } = api();
  const watched = new Set(peIds);
  const ready = new Map<string, Set<string>>(peIds.map((id) => [id, new Set<string>()]));
  const isReady = (pod: k8s.V1Pod) =>
    !pod.metadata?.deletionTimestamp && (pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);
  const apply = (phase: string, pod: k8s.V1Pod) => {
    const peId = pod.metadata?.labels?.[LABELS.peId];
    if (!peId || !watched.has(peId)) return;
    const name = pod.metadata!.name!;
    if (phase !== "DELETED" && isReady(pod)) ready.get(peId)!.add(name);
    else ready.get(peId)!.delete(name);
  };
  const without = () => [...ready.values()].filter((pods) => pods.size === 0).length;
  const list = await core.listNamespacedPod({ namespace: NAMESPACE });
  for (const pod of list.items) apply("ADDED", pod);
  let maxWithoutReady = without();
  let failure: unknown;
  const abort = await new k8s.Watch(config).watch(
    `/api/v1/namespaces/${NAMESPACE}/pods`,
    { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
    (phase: string, pod: k8s.V1Pod) => {
      apply(phase, pod);
      maxWithoutReady = Math.max(maxWithoutReady, without());
    },
    (error: unknown) => {
      if (error && !String(error).includes("aborted")) failure = error;
    },
  );
  return {
    stop: async () => {
      abort.abort();
      if (failure) throw new Error(`the pod watch ended early: ${String(failure)}`);
      return { maxWithoutReady };
    },
  };
}
