// Kubernetes implementation of the backend seam, on the official client (@kubernetes/client-node).
//
//   state volume  = a PersistentVolumeClaim (declared by the component with @pulumi/kubernetes);
//                   its labels carry the PE id, its annotations the owner and the generation
//   executable    = a pod per generation, bound to the claim, required on the node holding the claim's
//                   volume; created gated (spec.schedulingGates) = prepared, gate removed = started
//   generation    = an annotation on the claim, bumped with optimistic concurrency (resourceVersion)
//   lock          = a coordination.k8s.io/v1 Lease; renewals are a counter the holder bumps
//   record        = a ConfigMap beside the claim: the control record (mounted into the pod, live commit
//                   interval), the desired spec and the pod reseat wants running (a vanished pod is a
//                   failure the controller repairs), the controller's status
//   secrets       = the postgres password in a Secret mounted into the pod; secret env values in a
//                   Secret the pod's env references (keys per spec hash), never in the pod spec or record
//   commit status = the workload's status endpoint, read through the API server's pod proxy (no exec)
//
// Nothing is ever written into a claim from outside: the claim's data belongs to the pod that mounts it.
import type { V1ConfigMap, V1Lease, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import * as k8s from "@kubernetes/client-node";
import {
  Backend,
  EngineIdentity,
  EventStream,
  ExecutableDesired,
  ExecutableEvent,
  ImageResolution,
  LABELS,
  LeaseRecord,
  ObservedExecutable,
  PeStatusRecords,
  VolumeClaim,
  VolumeHolder,
  VolumeInfo,
  VolumeMeta,
  assertSecretEnvKnown,
  desiredFromLabel,
  desiredLabel,
  secretEnvNames,
  withSecretEnv,
} from "../backend";
import { RetryExhaustedError, poll } from "../../util/retry";
import { mapInLanes } from "../../util/lanes";
import { watchWithDeadlines } from "./apiDeadline";
import { PodFollower, PodWatch } from "./podWatch";
import {
  CONTROLLER_RECORD,
  CONTROL_RECORD,
  REVERT_RECORD,
  RecordCorruptError,
  type ControlRecord,
  type ControllerRecord,
  type FileOwner,
  type RecordCodec,
  type RevertRecord,
  type StoreDesired,
  type WorkloadStatus,
} from "@reseat/state/contract";
import { storeSource } from "../fileRecords";
import { askPostgresGeneration } from "../storeGeneration";
import { KubernetesClients, MERGE_PATCH, JSON_PATCH, apiMessage, connect, isConflict, isNotFound, orUndefined } from "./client";
import { assertClaimAdmitsStandby, markServingWhenServing, nodeOfRunningPod, readParkedStatus, readServingStatus, runningPodsOnClaim } from "./standby";
import {
  ANNOTATIONS,
  HOPELESS_WAITING,
  PASSWORD_KEY,
  PodIdentity,
  WORKLOAD_CONTAINER,
  awaitsServingMark,
  envSecretName,
  isReady,
  leaseObjectName,
  leaseRecordOf,
  nodeOfVolume,
  observePod,
  passwordSecretName,
  peIdFromPodName,
  podManifest,
  podProblem,
  podState,
  recordName,
  secretEnvKey,
  specHashOfSecretEnvKey,
  volumeOfClaim,
} from "./objects";

/** Where the PE's records live on Kubernetes: keys of its record ConfigMap (the 0.4.0 keys: the records' file names). */
const RECORD_KEYS = { control: recordKey(CONTROL_RECORD), controller: recordKey(CONTROLLER_RECORD), revert: recordKey(REVERT_RECORD) } as const;
const DESIRED_KEY = "desired.json";

export interface KubernetesTarget {
  namespace: string;
  context?: string;
}

export class KubernetesBackend implements Backend {
  readonly kind = "kubernetes" as const;
  readonly namespace: string;
  private clientsCache?: KubernetesClients;
  private identityCache?: EngineIdentity;
  /**
   * Within one replacement the generation is read before the gap and recorded inside it: the claim as
   * read then (its resourceVersion) and the PE's directory-store claim (from prepare) save two API
   * round trips inside the gap. A stale resourceVersion only costs a re-read (409).
   */
  private readonly claimsReadForGeneration = new Map<string, V1PersistentVolumeClaim>();
  private readonly storeClaimOf = new Map<string, string | null>();
  private podWatchCache?: PodWatch;

  constructor(private readonly target: KubernetesTarget) {
    this.namespace = target.namespace;
  }

  /** Connected lazily: constructing a backend (e.g. to compare targets) needs no kubeconfig. */
  get clients(): KubernetesClients {
    if (!this.clientsCache) this.clientsCache = connect(this.target.context);
    return this.clientsCache;
  }

  private get core(): k8s.CoreV1Api {
    return this.clients.core;
  }

  /** The namespace's one pod watch, shared by every wait on a pod of this backend (podWatch.ts). */
  private get podWatch(): PodWatch {
    if (!this.podWatchCache)
      this.podWatchCache = new PodWatch(
        () => this.clients.config,
        () => this.core,
        this.namespace,
      );
    return this.podWatchCache;
  }

  /**
   * The pod now, on a wait's `attempt`: after its next event (from the watch's cache) or, with no event
   * within a second or no watch running, read from the API server. Undefined: the pod is gone.
   */
  private async nextPodState(follower: PodFollower, name: string, attempt: number, soon = false): Promise<V1Pod | undefined> {
    let fresh = attempt === 0;
    if (soon) {
      await follower.changed(20);
      fresh = true;
    } else if (!fresh) {
      // Without the watch, the tight schedule the waits always had: every millisecond may be in the gap.
      if (follower.watching()) fresh = !(await follower.changed(FALLBACK_READ_MS));
      else fresh = !(await follower.changed(attempt < 400 ? 20 : 200)) || !follower.watching();
    }
    const seen = follower.seen();
    if (!fresh && seen !== undefined) return seen ?? undefined;
    return this.readPod(name);
  }

  async identity(): Promise<EngineIdentity> {
    if (!this.identityCache) {
      // The kube-system namespace's uid is the customary stable id of a cluster.
      const system = await orUndefined(this.core.readNamespace({ name: "kube-system" }));
      this.identityCache = {
        kind: "kubernetes",
        id: system?.metadata?.uid ?? this.clients.server,
        address: this.clients.server,
        name: `${this.clients.context}/${this.namespace}`,
      };
    }
    return this.identityCache;
  }

  async ping(): Promise<void> {
    await this.clients.version.getCode();
  }

  /**
   * Nodes pull images themselves (imagePullPolicy IfNotPresent): the reference is the identity. Pin a
   * digest to replace a PE when an image changes under the same tag.
   */
  async ensureImage(ref: string): Promise<string> {
    return ref;
  }

  /** The same identity as ensureImage, and as read-only: no call to the API server at all. */
  async resolveImage(ref: string): Promise<ImageResolution> {
    return { kind: "resolved", imageId: ref };
  }

  // --- executables -----------------------------------------------------------------------------

  async listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    const selector = [`${LABELS.role}=executable`, ...(peId ? [`${LABELS.peId}=${peId}`] : [])].join(",");
    const pods = (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selector })).items.map(observePod);
    // A pod reseat wants but the API server no longer has (deleted, evicted, force-deleted) is a failed
    // executable: reported as "gone", so that the level-triggered controller re-creates it.
    const names = new Set(pods.map((p) => p.name));
    for (const record of await this.listRecords(peId)) {
      const wanted = record.metadata?.annotations?.[ANNOTATIONS.pod];
      if (wanted && !names.has(wanted)) pods.push(goneExecutable(record, wanted));
    }
    return pods;
  }

  async inspectExecutable(id: string): Promise<ObservedExecutable | undefined> {
    const pod = await this.readPod(id);
    if (pod) return observePod(pod);
    const record = await this.recordWanting(id);
    return record ? goneExecutable(record, id) : undefined;
  }

  /** The pod's annotation (or, for a vanished pod, the record), secret env values from the env Secret. */
  async desiredOf(id: string): Promise<ExecutableDesired | undefined> {
    const pod = await this.readPod(id);
    if (pod) return this.withSecretEnvOf(desiredFromLabel(pod.metadata?.annotations?.[LABELS.desired]), pod.metadata?.labels?.[LABELS.specHash]);
    const record = await this.recordWanting(id);
    return this.withSecretEnvOf(desiredFromLabel(record?.data?.[DESIRED_KEY]), record?.metadata?.annotations?.[ANNOTATIONS.podSpecHash]);
  }

  /**
   * Fills the secret env values of a spec back from the env Secret (the keys of its spec hash). One
   * that cannot be read stays the marker, which prepare refuses: a spec read only for who declared it
   * (a delete) needs no secret.
   */
  private async withSecretEnvOf(desired: ExecutableDesired | undefined, specHash: string | undefined): Promise<ExecutableDesired | undefined> {
    if (!desired || !specHash || !secretEnvNames(desired).length) return desired;
    const secret = await orUndefined(this.core.readNamespacedSecret({ name: envSecretName(desired.volumeName), namespace: this.namespace })).catch(
      () => undefined,
    );
    const data = secret?.data ?? {};
    return withSecretEnv(desired, (name) => {
      const encoded = data[secretEnvKey(specHash, name)];
      return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
    });
  }

  async runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    const pods = (await this.core.listNamespacedPod({ namespace: this.namespace })).items;
    return pods
      .filter((pod) => pod.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === volumeName))
      .filter((pod) => podState(pod).running || (["pending", "cannot-start"].includes(podState(pod).state) && !!pod.spec?.nodeName))
      .map((pod) => ({ id: pod.metadata?.name ?? "", name: pod.metadata?.name ?? "", peId: pod.metadata?.labels?.[LABELS.peId] }));
  }

  async prepare(desired: ExecutableDesired, identity: PodIdentity): Promise<string> {
    assertSecretEnvKnown(desired, identity.name);
    this.storeClaimOf.set(desired.volumeName, desired.store.kind === "directory" && desired.store.volume ? desired.store.volume : null);
    const node = await this.claimNode(desired.volumeName, desired);
    await this.writeSecretEnv(desired, identity.specHash);
    // The record first: from now on a vanished pod of this name is a failure, not a removal.
    await this.upsertRecord(desired.volumeName, desired.peId, {
      data: { [DESIRED_KEY]: desiredLabel(desired) },
      annotations: { [ANNOTATIONS.pod]: identity.name, [ANNOTATIONS.podSpecHash]: identity.specHash },
    });
    try {
      await this.core.createNamespacedPod({ namespace: this.namespace, body: podManifest(desired, identity, node) });
    } catch (error) {
      throw new Error(`reseat: creating pod ${identity.name} in namespace ${this.namespace} failed: ${apiMessage(error)}`);
    }
    return identity.name;
  }

  /** Removes the scheduling gate: the scheduler binds the pod (to the claim's node) and the kubelet starts it. */
  async start(executableId: string): Promise<void> {
    await this.core.patchNamespacedPod({ name: executableId, namespace: this.namespace, body: [{ op: "remove", path: "/spec/schedulingGates" }] }, JSON_PATCH);
  }

  async waitReady(executableId: string, desired: ExecutableDesired): Promise<void> {
    const timeoutMs = desired.readiness?.timeout ?? 60_000;
    let last: V1Pod | undefined;
    // A standby's pod is asked again soon while reseat waits to see it serve (no pod event says that).
    let askSoon = false;
    const follower = this.podWatch.follow(executableId);
    try {
      await poll(
        {
          what: `executable ${executableId} to be ready`,
          deadlineMs: timeoutMs,
          // Each attempt waits for the pod's next event itself (nextPodState): every millisecond here is part of the gap.
          pauseMs: 0,
          exhausted: async () =>
            new Error(
              `executable ${executableId} was not ready within ${timeoutMs} ms (${last ? podProblem(last) : "never read"}). Last log lines:\n${await this.logsTail(executableId)}`,
            ),
        },
        async (attempt) => {
          const pod = await this.nextPodState(follower, executableId, attempt, askSoon);
          if (!pod) throw new Error(`executable ${executableId} (pod) vanished before it was ready (deleted by someone else?)`);
          last = pod;
          const { state } = podState(pod);
          const container = pod.status?.containerStatuses?.find((c) => c.name === WORKLOAD_CONTAINER);
          if (state === "exited" || state === "failed") {
            const terminated = container?.state?.terminated;
            throw new Error(
              `executable ${executableId} exited with code ${terminated?.exitCode ?? "?"}${terminated?.reason === "OOMKilled" ? " (out of memory)" : ""} before it was ready. Last log lines:\n${await this.logsTail(executableId)}`,
            );
          }
          const waiting = container?.state?.waiting;
          if (waiting?.reason && HOPELESS_WAITING.has(waiting.reason)) {
            throw new Error(`executable ${executableId} cannot start: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ""}`);
          }
          // A standby hand-over's pod: Ready once reseat has seen it serve (its readiness gate; standby.ts).
          askSoon = state === "running" && awaitsServingMark(pod);
          if (askSoon) {
            await markServingWhenServing(this.clients, this.namespace, pod, desired);
            return undefined;
          }
          if (state === "running" && (isReady(pod) || (!desired.readiness && !pod.spec?.readinessGates?.length))) {
            if (pod.spec?.nodeName) await this.rememberNode(desired.volumeName, pod.spec.nodeName).catch(() => undefined);
            return true;
          }
          return undefined;
        },
      );
    } finally {
      follower.close();
    }
  }

  /**
   * Graceful stop: the pod is deleted with its grace period (SIGTERM, then SIGKILL) and this waits until
   * the kubelet reports every container of it stopped (a terminal phase; restartPolicy is Never) or the
   * API server has removed it. Its volume may still be unmounting then, but nothing runs in it any more:
   * the next pod may start. A pod on an unreachable node is never confirmed stopped: this fails rather
   * than let a second pod start beside one that may still write (docs/kubernetes.md, "A node that is gone").
   * A standby stopped before it took over: the record as in remove.
   */
  async stop(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    const wanted = await this.unwant(executableId);
    await this.deletePodAndWait(executableId, stop.graceSeconds, (stop.graceSeconds + 60) * 1000, "stopped");
    if (wanted) await this.wantServingPod(wanted);
  }

  /**
   * Deletes the pod and waits until the API server has removed it. A standby stopped or removed before it
   * took over (it never parked) leaves the record wanting the pod that still serves, as before it was made.
   */
  async remove(executableId: string): Promise<void> {
    const wanted = await this.unwant(executableId);
    await this.deletePodAndWait(executableId, undefined, 90_000, "gone");
    if (wanted) await this.wantServingPod(wanted);
  }

  /** The workload's last log lines; for a container that never ran (none to read), why: the pod's problem. */
  async logsTail(executableId: string, lines = 20): Promise<string> {
    try {
      return await this.core.readNamespacedPodLog({ name: executableId, namespace: this.namespace, container: WORKLOAD_CONTAINER, tailLines: lines });
    } catch {
      const pod = await this.readPod(executableId).catch(() => undefined);
      return `(logs unavailable${pod ? `: ${podProblem(pod)}` : ""})`;
    }
  }

  // --- volumes (claims) --------------------------------------------------------------------------

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    const pvc = await this.readClaim(name);
    return pvc ? volumeOfClaim(pvc) : undefined;
  }

  async listStateVolumes(): Promise<VolumeInfo[]> {
    const claims = await this.core.listNamespacedPersistentVolumeClaim({ namespace: this.namespace, labelSelector: `${LABELS.role}=state-volume` });
    return claims.items.map(volumeOfClaim);
  }

  /** Create → 409 → read the owner: of two racing claims exactly one creates the claim. */
  async claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    return this.claimOf(claim, "state-volume");
  }

  /** The directory store's claim (labelled as the component labels it), made the same way. */
  async claimStoreVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    return this.claimOf(claim, "store-volume");
  }

  private async claimOf(claim: VolumeClaim, role: "state-volume" | "store-volume"): Promise<VolumeInfo & { created: boolean }> {
    const body: V1PersistentVolumeClaim = {
      metadata: {
        name: claim.name,
        labels: { [LABELS.managed]: "true", [LABELS.role]: role, [LABELS.peId]: claim.peId },
        annotations: { [LABELS.owner]: claim.owner },
      },
      spec: {
        accessModes: ["ReadWriteOnce"],
        ...(claim.driver ? { storageClassName: claim.driver } : {}),
        resources: { requests: { storage: claim.size ?? "1Gi" } },
      },
    };
    try {
      const created = await this.core.createNamespacedPersistentVolumeClaim({ namespace: this.namespace, body });
      return { ...volumeOfClaim(created), created: true };
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    const existing = await this.readClaim(claim.name);
    if (!existing) throw new Error(`claim ${claim.name} was reported as existing, then not found`);
    return { ...volumeOfClaim(existing), created: false };
  }

  async removeVolume(name: string): Promise<void> {
    // Refused while a pod runs on it, as Docker refuses a volume in use: the API server would accept the
    // delete, hold the claim by its protection finalizer and drop the PE's data once the pod goes.
    const holders = await this.runningOnVolume(name);
    if (holders.length) throw new Error(`reseat: claim ${name} is in use by ${holders.map((h) => h.name).join(", ")}; not deleting it`);
    await orUndefined(this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: this.namespace }));
    // Gone when this returns, as on Docker: a claim still terminating (its protection finalizer) would be
    // "adopted" by a claim of the same name made right after, then vanish under it.
    await poll(
      {
        what: `claim ${name} to be deleted`,
        deadlineMs: 60_000,
        pauseMs: 250,
        exhausted: () => new Error(`reseat: claim ${name} was deleted but is still there after 60 s (a pod still references it?)`),
      },
      async () => ((await this.readClaim(name)) ? undefined : true),
    );
  }

  async readGeneration(volumeName: string): Promise<VolumeMeta | undefined> {
    const pvc = await this.readClaim(volumeName);
    if (pvc) this.claimsReadForGeneration.set(volumeName, pvc);
    const text = pvc?.metadata?.annotations?.[ANNOTATIONS.generation];
    if (!pvc || text === undefined) return undefined;
    const generation = Number(text);
    if (!Number.isSafeInteger(generation))
      throw new Error(`claim ${volumeName}: annotation ${ANNOTATIONS.generation}="${text}" is not a whole number; refusing to guess the generation`);
    return {
      peId: pvc.metadata?.labels?.[LABELS.peId] ?? "",
      generation,
      volume: volumeName,
      updatedAt: pvc.metadata?.annotations?.[ANNOTATIONS.generationAt] ?? "",
    };
  }

  /**
   * Bumps the claim's generation annotation with optimistic concurrency: the patch carries the
   * resourceVersion it was computed from, so a concurrent writer makes it fail (409) and it is re-read.
   * Generations only go up. The directory store's claim (if any) carries the same annotation, so a
   * state claim made afresh continues from the generation its store has seen.
   */
  async recordGeneration(meta: VolumeMeta): Promise<void> {
    const known = this.storeClaimOf.get(meta.volume);
    const store = known === undefined ? `${meta.volume}-store` : known;
    await Promise.all([this.bumpGeneration(meta.volume, meta, true), store ? this.bumpGeneration(store, meta, false) : undefined]);
  }

  private async bumpGeneration(claimName: string, meta: VolumeMeta, required: boolean): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const cached = attempt === 0 ? this.claimsReadForGeneration.get(claimName) : undefined;
      this.claimsReadForGeneration.delete(claimName);
      const pvc = cached ?? (await this.readClaim(claimName));
      if (!pvc) {
        if (required) throw new Error(`reseat: claim ${claimName} does not exist; cannot record generation ${meta.generation}`);
        return;
      }
      const current = Number(pvc.metadata?.annotations?.[ANNOTATIONS.generation] ?? 0);
      if (current >= meta.generation) {
        if (!required) return;
        throw new Error(
          `reseat: claim ${claimName} is already at generation ${current}; refusing to record ${meta.generation} (another replacement ran concurrently)`,
        );
      }
      try {
        await this.core.patchNamespacedPersistentVolumeClaim(
          {
            name: claimName,
            namespace: this.namespace,
            body: {
              metadata: {
                resourceVersion: pvc.metadata?.resourceVersion,
                annotations: { [ANNOTATIONS.generation]: String(meta.generation), [ANNOTATIONS.generationAt]: meta.updatedAt },
              },
            },
            fieldManager: "reseat",
          },
          MERGE_PATCH,
        );
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    throw new Error(`reseat: claim ${claimName} kept changing while recording generation ${meta.generation}`);
  }

  // --- records: on the claim (generation), the PE's record ConfigMap (control, controller, revert), a
  // Secret (the store password) and the pod itself (its securityContext owns the claim for a non-root
  // workload; the workload's status through the API server's pod proxy). Nothing is written into a claim.

  async readControl(volumeName: string): Promise<ControlRecord | undefined> {
    return this.readRecordKey(volumeName, CONTROL_RECORD, RECORD_KEYS.control);
  }

  async writeControl(volumeName: string, control: ControlRecord): Promise<void> {
    await this.writeRecordKey(volumeName, RECORD_KEYS.control, CONTROL_RECORD.encode(control));
  }

  async readRevert(volumeName: string): Promise<RevertRecord | undefined> {
    return this.readRecordKey(volumeName, REVERT_RECORD, RECORD_KEYS.revert);
  }

  async writeRevert(volumeName: string, record: RevertRecord): Promise<void> {
    await this.writeRecordKey(volumeName, RECORD_KEYS.revert, REVERT_RECORD.encode(record));
  }

  async readControllerRecord(volumeName: string): Promise<ControllerRecord | undefined> {
    return this.readRecordKey(volumeName, CONTROLLER_RECORD, RECORD_KEYS.controller);
  }

  async writeControllerRecord(volumeName: string, record: ControllerRecord): Promise<void> {
    await this.writeRecordKey(volumeName, RECORD_KEYS.controller, CONTROLLER_RECORD.encode(record));
  }

  /**
   * The serving writer's own status, through the API server's proxy to the PE's running pods (no exec, nothing
   * in the claim read from outside): the newest that says serving, never a parked standby (standby.ts).
   */
  async readWorkloadStatus(volumeName: string): Promise<WorkloadStatus | undefined> {
    const pods = (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${LABELS.role}=executable` })).items;
    return readServingStatus(this.clients, this.namespace, pods, volumeName);
  }

  /**
   * `reseat status` for many PEs: one pod list and one record list whatever their number, then each
   * PE's serving pod asked through the proxy, `lanes` at a time (readWorkloadStatus lists every pod per PE).
   */
  async readStatusRecords(volumeNames: string[], options: { lanes: number }): Promise<Map<string, PeStatusRecords>> {
    const [pods, records] = await Promise.all([
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${LABELS.role}=executable` }),
      this.listRecords(),
    ]);
    const podsOnVolume = new Map<string, V1Pod[]>();
    for (const pod of pods.items) {
      const volume = pod.metadata?.annotations?.[LABELS.volume];
      if (volume) podsOnVolume.set(volume, [...(podsOnVolume.get(volume) ?? []), pod]);
    }
    const recordByName = new Map(records.map((record) => [record.metadata?.name ?? "", record]));
    const answer = new Map<string, PeStatusRecords>();
    await mapInLanes(volumeNames, options.lanes, async (volumeName) => {
      const data = recordByName.get(recordName(volumeName))?.data ?? {};
      const corrupt: PeStatusRecords["corrupt"] = {};
      const decoded = <T>(codec: RecordCodec<T>, key: string, what: keyof PeStatusRecords["corrupt"]): T | undefined => {
        try {
          return data[key] === undefined ? undefined : codec.decode(data[key]);
        } catch (error) {
          if (!(error instanceof RecordCorruptError)) throw error;
          corrupt[what] = error.message;
          return undefined;
        }
      };
      const controller = decoded(CONTROLLER_RECORD, RECORD_KEYS.controller, "controller record");
      const revert = decoded(REVERT_RECORD, RECORD_KEYS.revert, "revert record");
      // The workload rewrites its status all the time: one that does not answer reads as none.
      const workload = await readServingStatus(this.clients, this.namespace, podsOnVolume.get(volumeName) ?? [], volumeName).catch(() => undefined);
      answer.set(volumeName, { workload, controller, revert, corrupt });
    });
    return answer;
  }

  /** The standby pod's own status endpoint (desired.kubernetes.status, through the pod proxy) saying parked for this generation. */
  async readStandbyStatus(executableId: string, desired: ExecutableDesired, generation: number): Promise<WorkloadStatus | undefined> {
    return readParkedStatus(this.clients, this.namespace, await this.readPod(executableId), desired, generation);
  }

  /** In the PE's password Secret, which the pod mounts (readable by the pod's fsGroup). */
  async writeStoreSecret(volumeName: string, password: string): Promise<void> {
    await this.writePasswordSecret(volumeName, password);
  }

  /** The pod's securityContext (runAsUser, runAsGroup, fsGroup) owns the claim at mount: nothing to do from outside. */
  async ownState(_volumeName: string, _owner: FileOwner): Promise<void> {}

  /** The store claim is mounted with the pod's fsGroup too: the workload makes its folder itself. */
  async prepareStoreFolder(_store: Extract<StoreDesired, { kind: "directory" }>, _peId: string, _owner: FileOwner): Promise<void> {}

  /** A directory store's fence is its claim's generation annotation (recordGeneration bumps both); PostgreSQL is asked. */
  async readStoreGeneration(store: StoreDesired, peId: string): Promise<number> {
    switch (store.kind) {
      case "none":
        return 0;
      case "directory": {
        const generation = (await this.readClaim(storeSource(store)))?.metadata?.annotations?.[ANNOTATIONS.generation];
        return generation === undefined ? 0 : Number(generation);
      }
      case "postgres":
        return askPostgresGeneration(store, peId);
    }
  }

  private async readRecordKey<T>(volumeName: string, codec: RecordCodec<T>, key: string): Promise<T | undefined> {
    const text = (await this.readRecord(volumeName))?.data?.[key];
    return text === undefined ? undefined : codec.decode(text);
  }

  private async writeRecordKey(volumeName: string, key: string, text: string): Promise<void> {
    const peId = (await this.readClaim(volumeName))?.metadata?.labels?.[LABELS.peId] ?? "";
    await this.upsertRecord(volumeName, peId, { data: { [key]: text } });
  }

  // --- leases ------------------------------------------------------------------------------------

  async tryAcquireLease(
    name: string,
    holder: string,
    leaseMs: number,
  ): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }> {
    const now = microTime();
    const body: V1Lease = {
      metadata: {
        name: leaseObjectName(name),
        labels: { [LABELS.managed]: "true", [LABELS.role]: "lease" },
        annotations: { [LABELS.leaseMs]: String(leaseMs), [ANNOTATIONS.leaseRenewals]: "0" },
      },
      spec: { holderIdentity: holder, leaseDurationSeconds: Math.max(1, Math.ceil(leaseMs / 1000)), acquireTime: now, renewTime: now, leaseTransitions: 0 },
    };
    // Bounded: a lease released between our create and our look is retried a few times, then it is an error.
    const race = { what: `lease ${leaseObjectName(name)} (released and taken again under us)`, attempts: 10, pauseMs: (n: number) => 10 * (n + 1) };
    return poll<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }>(race, async () => {
      try {
        const created = await this.clients.coordination.createNamespacedLease({ namespace: this.namespace, body });
        return { acquired: true, lease: leaseRecordOf(name, created) };
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      const current = await this.readLease(name);
      if (current) return { acquired: false, current };
      return undefined; // released between our create and our look: try again
    });
  }

  /** Bumps the renewal counter of exactly this holding: the patch carries its resourceVersion. */
  async renewLease(lease: LeaseRecord): Promise<boolean> {
    // A conflict (someone wrote the Lease between our read and our patch) is retried a few times, with a pause.
    const contended = { what: `a renewal of lease ${leaseObjectName(lease.name)}`, attempts: 5, pauseMs: (n: number) => 10 * (n + 1) };
    return poll<boolean>(contended, async () => {
      const current = await this.readLeaseObject(lease.name);
      if (!current || current.metadata?.uid !== lease.token) return false;
      const renewals = Number(current.metadata?.annotations?.[ANNOTATIONS.leaseRenewals] ?? 0) + 1;
      const renewTime = microTime();
      try {
        await this.clients.coordination.patchNamespacedLease(
          {
            name: leaseObjectName(lease.name),
            namespace: this.namespace,
            body: {
              metadata: { resourceVersion: current.metadata?.resourceVersion, annotations: { [ANNOTATIONS.leaseRenewals]: String(renewals) } },
              spec: { renewTime },
            },
          },
          MERGE_PATCH,
        );
        lease.renewals = renewals;
        lease.renewedAt = String(renewTime);
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        if (!isConflict(error)) throw error;
        return undefined;
      }
    }).catch((error: unknown) => {
      if (error instanceof RetryExhaustedError) return true; // contended, not lost: the count stands still this time
      throw error;
    });
  }

  async holdsLease(lease: LeaseRecord): Promise<boolean> {
    return (await this.readLeaseObject(lease.name))?.metadata?.uid === lease.token;
  }

  /** Deletes exactly this holding: the uid precondition refuses to delete a lease taken over since. */
  async releaseLease(lease: LeaseRecord): Promise<void> {
    try {
      await this.clients.coordination.deleteNamespacedLease({
        name: leaseObjectName(lease.name),
        namespace: this.namespace,
        body: { preconditions: { uid: lease.token } },
      });
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) throw error;
    }
  }

  async readLease(name: string): Promise<LeaseRecord | undefined> {
    const lease = await this.readLeaseObject(name);
    return lease ? leaseRecordOf(name, lease) : undefined;
  }

  private readLeaseObject(name: string): Promise<V1Lease | undefined> {
    return orUndefined(this.clients.coordination.readNamespacedLease({ name: leaseObjectName(name), namespace: this.namespace }));
  }

  // --- events ------------------------------------------------------------------------------------

  /**
   * A pod watch: a pod that ended (phase Failed/Succeeded) is reported once; a pod deleted while reseat
   * still wanted it (kubectl delete, eviction, --force) too. The stream ends when the watch does
   * (expiry, connection loss); the controller resubscribes and resyncs.
   */
  async watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream> {
    let resolveEnded!: (error: Error | undefined) => void;
    const ended = new Promise<Error | undefined>((resolve) => (resolveEnded = resolve));
    const reported = new Set<string>();
    // Connect deadline and idle policy: apiDeadline.ts.
    const abort = await watchWithDeadlines(
      this.clients.config,
      `/api/v1/namespaces/${this.namespace}/pods`,
      { labelSelector: `${LABELS.role}=executable` },
      (phase: string, object: unknown) => {
        const pod = object as V1Pod;
        const peId = pod.metadata?.labels?.[LABELS.peId];
        const name = pod.metadata?.name ?? "";
        if (!peId) return;
        if (phase === "DELETED") {
          if (reported.delete(name)) return; // already reported as ended
          void this.recordWanting(name)
            .then((record) => {
              if (record) onEvent({ peId, kind: "exited", reason: `pod ${name} was deleted outside reseat` });
              else onEvent({ peId, kind: "removed", reason: "removed" });
            })
            .catch(() => undefined);
          return;
        }
        const { state } = podState(pod);
        if ((state === "exited" || state === "failed") && !reported.has(name)) {
          reported.add(name);
          const terminated = pod.status?.containerStatuses?.find((c) => c.name === WORKLOAD_CONTAINER)?.state?.terminated;
          if (terminated?.reason === "OOMKilled") onEvent({ peId, kind: "oom", reason: "out of memory" });
          else
            onEvent({ peId, kind: "exited", reason: `exited with code ${terminated?.exitCode ?? "?"}${pod.status?.reason ? ` (${pod.status.reason})` : ""}` });
        }
      },
      (error: unknown) => resolveEnded(error ? (error instanceof Error ? error : new Error(String(error))) : new Error("the pod watch ended")),
    );
    return {
      close: () => {
        abort.abort();
        resolveEnded(undefined);
      },
      ended,
    };
  }

  // --- internals ---------------------------------------------------------------------------------

  private readPod(name: string): Promise<V1Pod | undefined> {
    return orUndefined(this.core.readNamespacedPod({ name, namespace: this.namespace }));
  }

  private readClaim(name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return orUndefined(this.core.readNamespacedPersistentVolumeClaim({ name, namespace: this.namespace }));
  }

  private readRecord(volumeName: string): Promise<V1ConfigMap | undefined> {
    return orUndefined(this.core.readNamespacedConfigMap({ name: recordName(volumeName), namespace: this.namespace }));
  }

  private async listRecords(peId?: string): Promise<V1ConfigMap[]> {
    const selector = [`${LABELS.role}=record`, ...(peId ? [`${LABELS.peId}=${peId}`] : [])].join(",");
    return (await this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector: selector })).items;
  }

  /** The record that still wants this pod (its name carries the PE id). */
  private async recordWanting(podName: string): Promise<V1ConfigMap | undefined> {
    const peId = peIdFromPodName(podName);
    if (!peId) return undefined;
    return (await this.listRecords(peId)).find((r) => r.metadata?.annotations?.[ANNOTATIONS.pod] === podName);
  }

  /** reseat itself stops or removes this pod: its disappearance is no failure. Returns the record it cleared, if any. */
  private async unwant(podName: string): Promise<V1ConfigMap | undefined> {
    let cleared: V1ConfigMap | undefined;
    const contended = {
      what: `the release of pod ${podName} in its record`,
      attempts: 10,
      pauseMs: (n: number) => 10 * (n + 1),
      exhausted: () => new Error(`reseat: the record of pod ${podName} kept changing while reseat released it`),
    };
    await poll(contended, async () => {
      const record = await this.recordWanting(podName);
      if (!record) return true;
      try {
        // The resourceVersion makes this clear exactly the mark it read, never a newer one.
        await this.core.patchNamespacedConfigMap(
          {
            name: record.metadata!.name!,
            namespace: this.namespace,
            body: { metadata: { resourceVersion: record.metadata?.resourceVersion, annotations: { [ANNOTATIONS.pod]: null } } },
          },
          MERGE_PATCH,
        );
        cleared = record;
        return true;
      } catch (error) {
        if (!isConflict(error)) throw error;
        return undefined;
      }
    });
    return cleared;
  }

  /**
   * After a removed standby: the record wants the PE's pod that still runs on the claim (the serving one),
   * with the spec it runs, so that its vanishing is again a failure the controller repairs. Nothing when
   * no pod of the PE runs there (the staged routine's removals) or the record already wants another pod.
   */
  private async wantServingPod(record: V1ConfigMap): Promise<void> {
    const volumeName = record.metadata?.annotations?.[LABELS.volume];
    const peId = record.metadata?.labels?.[LABELS.peId];
    if (!volumeName || !peId) return;
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${LABELS.role}=executable,${LABELS.peId}=${peId}` });
    const serving = runningPodsOnClaim(pods.items, volumeName)[0];
    const desired = serving?.metadata?.annotations?.[LABELS.desired];
    if (!serving?.metadata?.name || !desired || (await this.readRecord(volumeName))?.metadata?.annotations?.[ANNOTATIONS.pod]) return;
    await this.upsertRecord(volumeName, peId, {
      data: { [DESIRED_KEY]: desired },
      annotations: { [ANNOTATIONS.pod]: serving.metadata.name, [ANNOTATIONS.podSpecHash]: serving.metadata.labels?.[LABELS.specHash] ?? "" },
    });
  }

  private async upsertRecord(volumeName: string, peId: string, change: { data?: Record<string, string>; annotations?: Record<string, string> }): Promise<void> {
    const name = recordName(volumeName);
    const body = {
      metadata: {
        labels: { [LABELS.managed]: "true", [LABELS.role]: "record", [LABELS.peId]: peId },
        annotations: { [LABELS.volume]: volumeName, ...change.annotations },
      },
      data: change.data ?? {},
    };
    try {
      await this.core.patchNamespacedConfigMap({ name, namespace: this.namespace, body, fieldManager: "reseat" }, MERGE_PATCH);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await this.core.createNamespacedConfigMap({ namespace: this.namespace, body: { metadata: { name, ...body.metadata }, data: body.data } });
      } catch (createError) {
        if (!isConflict(createError)) throw createError;
        await this.core.patchNamespacedConfigMap({ name, namespace: this.namespace, body, fieldManager: "reseat" }, MERGE_PATCH);
      }
    }
  }

  private async writePasswordSecret(volumeName: string, password: string): Promise<void> {
    const name = passwordSecretName(volumeName);
    const body = {
      metadata: { name, labels: { [LABELS.managed]: "true", [LABELS.role]: "store-password" } },
      type: "Opaque",
      stringData: { [PASSWORD_KEY]: password },
    };
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body });
    } catch (error) {
      if (!isConflict(error)) throw error;
      await this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body });
    }
  }

  /**
   * Puts the spec's secret env values into the PE's env Secret under its spec hash (a pod reads its own
   * spec's keys), and drops the keys of specs no pod of the PE and no record needs any more. Runs under
   * the PE's lock (prepare), so nobody else writes this Secret meanwhile; the resourceVersion makes a
   * writer outside the lock fail rather than be overwritten.
   */
  private async writeSecretEnv(desired: ExecutableDesired, specHash: string): Promise<void> {
    const names = secretEnvNames(desired);
    if (!names.length) return;
    const name = envSecretName(desired.volumeName);
    const existing = await orUndefined(this.core.readNamespacedSecret({ name, namespace: this.namespace }));
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${LABELS.role}=executable,${LABELS.peId}=${desired.peId}` });
    const wanted = (await this.readRecord(desired.volumeName))?.metadata?.annotations?.[ANNOTATIONS.podSpecHash];
    const inUse = new Set([specHash, ...pods.items.map((pod) => pod.metadata?.labels?.[LABELS.specHash]), wanted].filter((hash): hash is string => !!hash));
    const data = Object.fromEntries(Object.entries(existing?.data ?? {}).filter(([key]) => inUse.has(specHashOfSecretEnvKey(key))));
    for (const env of names) data[secretEnvKey(specHash, env)] = Buffer.from(desired.env[env]!, "utf8").toString("base64");
    const metadata = { name, labels: { [LABELS.managed]: "true", [LABELS.role]: "secret-env", [LABELS.peId]: desired.peId } };
    try {
      if (existing)
        await this.core.replaceNamespacedSecret({
          name,
          namespace: this.namespace,
          body: { metadata: { ...metadata, resourceVersion: existing.metadata?.resourceVersion }, type: "Opaque", data },
        });
      else await this.core.createNamespacedSecret({ namespace: this.namespace, body: { metadata, type: "Opaque", data } });
    } catch (error) {
      throw new Error(
        `reseat: writing the secret env values of PE "${desired.peId}" into Secret ${name} in namespace ${this.namespace} failed: ${apiMessage(error)}`,
      );
    }
  }

  /**
   * The node that holds the claim's volume: from the bound PersistentVolume's node affinity, else the
   * node its last pod ran on (for a standby: the node of the pod running on it); undefined for a claim never
   * used (the scheduler places the first pod). A standby's claim must admit a second pod (ReadWriteOncePod does not).
   */
  async claimNode(volumeName: string, desired?: Pick<ExecutableDesired, "handover" | "peId">): Promise<string | undefined> {
    const pvc = await this.readClaim(volumeName);
    if (!pvc) throw new Error(`reseat: claim ${volumeName} does not exist in namespace ${this.namespace}`);
    if (desired) assertClaimAdmitsStandby(pvc, desired);
    const pvName = pvc.spec?.volumeName;
    if (pvName) {
      const pv = await orUndefined(this.core.readPersistentVolume({ name: pvName })).catch(() => undefined);
      const node = nodeOfVolume(pv);
      if (node) return node;
    }
    const recorded = pvc.metadata?.annotations?.[ANNOTATIONS.node];
    if (recorded || desired?.handover !== "standby") return recorded;
    // A standby starts while the serving pod runs: it must join that pod's node, which has the claim mounted.
    return nodeOfRunningPod((await this.core.listNamespacedPod({ namespace: this.namespace })).items, volumeName);
  }

  /** The claim's node is gone, not Ready, or cordoned: its member's next pod could not run there (nor anywhere else). */
  async volumeHostUnavailable(volumeName: string): Promise<string | undefined> {
    const node = await this.claimNode(volumeName);
    if (!node) return undefined;
    const object = await orUndefined(this.core.readNode({ name: node }));
    if (!object) return `node ${node}, which holds claim ${volumeName}, is gone`;
    const ready = object.status?.conditions?.find((c) => c.type === "Ready");
    if (ready?.status !== "True") return `node ${node}, which holds claim ${volumeName}, is not Ready (${ready?.reason ?? ready?.status ?? "no report"})`;
    if (object.spec?.unschedulable) return `node ${node}, which holds claim ${volumeName}, is cordoned`;
    return undefined;
  }

  private async rememberNode(volumeName: string, node: string): Promise<void> {
    const pvc = await this.readClaim(volumeName);
    if (!pvc || pvc.metadata?.annotations?.[ANNOTATIONS.node] === node) return;
    await this.core.patchNamespacedPersistentVolumeClaim(
      { name: volumeName, namespace: this.namespace, body: { metadata: { annotations: { [ANNOTATIONS.node]: node } } }, fieldManager: "reseat" },
      MERGE_PATCH,
    );
  }

  private async deletePodAndWait(name: string, graceSeconds: number | undefined, timeoutMs: number, until: "stopped" | "gone"): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ name, namespace: this.namespace, ...(graceSeconds !== undefined ? { gracePeriodSeconds: graceSeconds } : {}) });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    let last: V1Pod | undefined;
    const follower = this.podWatch.follow(name);
    try {
      await poll(
        {
          what: `pod ${name} to stop`,
          deadlineMs: timeoutMs,
          pauseMs: 0,
          exhausted: () =>
            new Error(
              `reseat: pod ${name} was not confirmed stopped within ${Math.round(timeoutMs / 1000)} s (${last ? podProblem(last) : "never read"}); its node may be unreachable. ` +
                `reseat does not start another pod on the claim while this one may still run: it waits for the node (see docs/kubernetes.md)`,
            ),
        },
        async (attempt) => {
          const pod = await this.nextPodState(follower, name, attempt);
          if (!pod) return true;
          last = pod;
          if (until === "stopped" && !podState(pod).running && podState(pod).state !== "pending") return true;
          return undefined;
        },
      );
    } finally {
      follower.close();
    }
  }
}

function goneExecutable(record: V1ConfigMap, podName: string): ObservedExecutable {
  const desired = desiredFromLabel(record.data?.[DESIRED_KEY]);
  return {
    id: podName,
    name: podName,
    peId: record.metadata?.labels?.[LABELS.peId] ?? desired?.peId ?? "",
    owner: desired?.owner,
    generation: Number(/-g(\d+)$/.exec(podName)?.[1] ?? 0),
    specHash: record.metadata?.annotations?.[ANNOTATIONS.podSpecHash] ?? "",
    volumeName: record.metadata?.annotations?.[LABELS.volume] ?? desired?.volumeName ?? "",
    state: "gone",
    running: false,
  };
}

/**
 * Lease times are MicroTime: the API server parses exactly six fractional digits, and the client would
 * send a Date with three. A string passes through its serializer unchanged.
 */
function microTime(): Date {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as Date;
}

/** A wait on a pod the watch says nothing about reads it from the API server after this long (podWatch.ts). */
const FALLBACK_READ_MS = 1_000;

/** A record's key in the record ConfigMap: its file's name (what 0.4.0 wrote). */
function recordKey(codec: RecordCodec<unknown>): string {
  return codec.file.slice(codec.file.lastIndexOf("/") + 1);
}
