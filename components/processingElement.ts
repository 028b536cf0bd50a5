// ProcessingElement: one declaration gives a PE's state volume (its own resource, kept on destroy by
// default) and its executable (replaced delete-before-replace, re-bound to the kept volume).
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { ClaimCheck } from "../src/provider/claimCheck";
import { Executable } from "../src/provider/executable";
import { StateVolume } from "../src/provider/stateVolume";
import type { StoreDesired } from "../src/backend/backend";
import type { EngineCredentials } from "../src/backend/docker/connection";
import { ProcessingElementInput, ProcessingElementSpec, SpecError, parseProcessingElement, volumeNameOf } from "../src/spec/processingElement";
import { engineTarget, executableFields, storeClaimNameOf, storeDesired, volumeOwner } from "../src/spec/desired";
import { LABELS } from "../src/backend/backend";
import { declareInProgram } from "../src/spec/uniqueness";

export const PROCESSING_ELEMENT_TYPE = "reseat:index:ProcessingElement";

/** A PE's outputs, as a stack exports them (see the README's outputs table). */
export interface ProcessingElementOutputs {
  peId: string;
  generation: number;
  executableId: string;
  executableName: string;
  volumeName: string;
  host: string;
  imageId: string;
  commitIntervalMs: number;
  replacedAt: string;
  readyAt: string;
  lastCommit: { seq: number; at: string; bytes: number } | null;
  commitLagMs: number | null;
  resumedFrom: "local" | "persistent" | "empty" | null;
  resumedSeq: number | null;
  lastCommitError: string | null;
  /** The last replacement was reverted: the previous spec serves again (as of the last read). */
  reverted: boolean;
  failedSpecHash: string | null;
}

/**
 * Resource options that make Pulumi replace a resource. A component has no provider and is never
 * replaced, so on a PE, group or fleet they would do nothing: they are taken off the component and
 * given to what is replaced — each PE's Executable (`<name>-executable`), or a fleet's Fleet resource.
 * `replaceOnChanges` then names that resource's input properties (see docs/spec.md).
 */
export type ReplacementOptions = Pick<pulumi.CustomResourceOptions, "replaceOnChanges" | "replacementTrigger" | "replaceWith">;

/** Splits a component's options into its own and the replacement options for its Executable(s) / Fleet. */
export function splitReplacementOptions<T extends pulumi.ResourceOptions>(opts: T | undefined): { own: Omit<T, keyof ReplacementOptions>; replacement: ReplacementOptions } {
  const { replaceOnChanges, replacementTrigger, replaceWith, ...own } = (opts ?? {}) as T;
  const replacement: ReplacementOptions = {};
  if (replaceOnChanges !== undefined) replacement.replaceOnChanges = replaceOnChanges;
  if (replacementTrigger !== undefined) replacement.replacementTrigger = replacementTrigger;
  if (replaceWith !== undefined) replacement.replaceWith = replaceWith.flatMap(replacedResourcesOf);
  return { own, replacement };
}

/**
 * What Pulumi replaces when `resource` is replaced: a reseat component itself never is, so
 * `replaceWith: [otherPe]` means "with its Executable" (a group: its members' Executables; a fleet: its
 * Fleet). Judged by shape, so that this file needs neither the group nor the fleet module.
 */
function replacedResourcesOf(resource: pulumi.Resource): pulumi.Resource[] {
  const shaped = resource as unknown as { executable?: unknown; fleet?: unknown; members?: unknown };
  if (shaped.executable instanceof Executable) return [shaped.executable];
  if (shaped.fleet instanceof pulumi.CustomResource) return [shaped.fleet];
  if (Array.isArray(shaped.members) && shaped.members.every((m) => (m as { executable?: unknown })?.executable instanceof Executable)) {
    return shaped.members.map((m) => (m as { executable: Executable }).executable);
  }
  return [resource];
}

/** Validates a spec the way the component does; throws SpecError naming every bad field. */
export function validateProcessingElement(name: string, args: unknown): ProcessingElementSpec {
  const withDefaultId = args && typeof args === "object" && !("peId" in args) ? { ...args, peId: name } : args;
  return parseProcessingElement(withDefaultId, `"${name}"`);
}

export class ProcessingElement extends pulumi.ComponentResource {
  /** The PE's id: unchanged for its whole life, across every replacement. */
  readonly peId: pulumi.Output<string>;
  /** Grows by one with each new executable; stored durably in the state volume. */
  readonly generation: pulumi.Output<number>;
  readonly executableId: pulumi.Output<string>;
  readonly executableName: pulumi.Output<string>;
  readonly volumeName: pulumi.Output<string>;
  readonly host: pulumi.Output<string>;
  readonly imageId: pulumi.Output<string>;
  readonly commitIntervalMs: pulumi.Output<number>;
  /** When the current executable generation was created. */
  readonly replacedAt: pulumi.Output<string>;
  readonly readyAt: pulumi.Output<string>;
  /** The newest commit in the persistent store ({seq, at, bytes}), as last observed. */
  readonly lastCommit: pulumi.Output<{ seq: number; at: string; bytes: number } | null>;
  /** How long acknowledged writes have waited to reach the persistent store (0: all committed). */
  readonly commitLagMs: pulumi.Output<number | null>;
  /** Where the current executable resumed from: "local", "persistent" or "empty". */
  readonly resumedFrom: pulumi.Output<"local" | "persistent" | "empty" | null>;
  readonly resumedSeq: pulumi.Output<number | null>;
  /** Why the last commit attempt failed (null when it succeeded). */
  readonly lastCommitError: pulumi.Output<string | null>;
  /** The last replacement failed and was reverted; `failedSpecHash` names the spec that failed. */
  readonly reverted: pulumi.Output<boolean>;
  readonly failedSpecHash: pulumi.Output<string | null>;
  /** Every output above by name: what stack programs export (the stack outputs). */
  readonly summary: { [K in keyof ProcessingElementOutputs]: pulumi.Output<ProcessingElementOutputs[K]> };
  /** The state volume: a Docker volume (StateVolume), or on Kubernetes a PersistentVolumeClaim. */
  readonly volume: StateVolume | k8s.core.v1.PersistentVolumeClaim;
  readonly executable: Executable;
  readonly spec: ProcessingElementSpec;

  /**
   * @param args a plain PE spec (see the README's spec table). Validated before anything is
   *   registered, so an invalid spec fails at preview and creates nothing.
   */
  constructor(name: string, args: Omit<ProcessingElementInput, "peId"> & { peId?: string }, opts?: pulumi.ComponentResourceOptions) {
    const spec = validateProcessingElement(name, args);
    const duplicates = declareInProgram({ subject: `"${name}"`, spec });
    if (duplicates.length) throw new SpecError(`"${name}"`, duplicates);
    const { own, replacement } = splitReplacementOptions(opts);
    super(PROCESSING_ELEMENT_TYPE, name, {}, own);
    this.spec = spec;
    const volumeName = volumeNameOf(spec);
    const owner = volumeOwner(pulumi.getProject(), pulumi.getStack(), spec.peId);
    const credentials = engineCredentialsOf(spec);

    if (spec.kubernetes) {
      const claims = kubernetesClaims(this, name, spec, volumeName, owner);
      this.volume = claims[0]!;
      this.executable = new Executable(
        `${name}-executable`,
        { ...executableFields(spec), owner, volumeName: claims[0]!.metadata.name, store: storeOf(spec) },
        { ...replacement, parent: this, dependsOn: claims, deleteBeforeReplace: false },
      );
    } else {
      const volume = new StateVolume(
        `${name}-volume`,
        { peId: spec.peId, name: volumeName, driver: spec.volume.driver, owner, engine: engineTarget(spec), engineCredentials: credentials },
        // The volume outlives `pulumi destroy` unless the spec opts out explicitly.
        { parent: this, retainOnDelete: spec.volume.retainOnDestroy, protect: false },
      );
      this.volume = volume;
      this.executable = new Executable(
        `${name}-executable`,
        { ...executableFields(spec), owner, volumeName: volume.name, store: storeOf(spec), engineCredentials: credentials },
        { ...replacement, parent: this, dependsOn: [volume], deleteBeforeReplace: false },
      );
    }

    this.peId = pulumi.output(spec.peId);
    this.generation = this.executable.generation;
    this.executableId = this.executable.executableId;
    this.executableName = this.executable.executableName;
    this.volumeName = this.volume instanceof StateVolume ? this.volume.name : this.volume.metadata.name;
    this.host = this.executable.host;
    this.imageId = this.executable.imageId;
    this.commitIntervalMs = this.executable.commitIntervalMs;
    this.replacedAt = this.executable.replacedAt;
    this.readyAt = this.executable.readyAt;
    this.lastCommit = this.executable.lastCommit;
    this.commitLagMs = this.executable.commitLagMs;
    this.resumedFrom = this.executable.resumedFrom;
    this.resumedSeq = this.executable.resumedSeq;
    this.lastCommitError = this.executable.lastCommitError;
    this.reverted = this.executable.reverted.apply((r) => r === true);
    this.failedSpecHash = this.executable.failedSpecHash.apply((h) => h ?? null);

    this.summary = {
      peId: this.peId,
      generation: this.generation,
      executableId: this.executableId,
      executableName: this.executableName,
      volumeName: this.volumeName,
      host: this.host,
      imageId: this.imageId,
      commitIntervalMs: this.commitIntervalMs,
      replacedAt: this.replacedAt,
      readyAt: this.readyAt,
      lastCommit: this.lastCommit,
      commitLagMs: this.commitLagMs,
      resumedFrom: this.resumedFrom,
      resumedSeq: this.resumedSeq,
      lastCommitError: this.lastCommitError,
      reverted: this.reverted,
      failedSpecHash: this.failedSpecHash,
    };
    // Nothing recorded for the component itself: its outputs are the Executable's, already in state, and
    // the stack exports them; a third copy per PE only grows the checkpoint Pulumi rewrites every step.
    this.registerOutputs({});
  }
}

/**
 * A PE's claims on Kubernetes, declared with @pulumi/kubernetes: the state claim (ReadWriteOnce, kept on
 * destroy unless volume.retainOnDestroy is false), and the directory store's own claim when the PE
 * uses one. Each stands behind a ClaimCheck that refuses someone else's claim and any change that would
 * need a new claim, at preview. The cluster comes from the ambient kubeconfig; only a context name (if
 * any) is recorded.
 */
function kubernetesClaims(parent: pulumi.Resource, name: string, spec: ProcessingElementSpec, volumeName: string, owner: string): k8s.core.v1.PersistentVolumeClaim[] {
  const settings = spec.kubernetes!;
  const engine = engineTarget(spec);
  const k8s = loadPulumiKubernetes(spec.peId);
  const provider = settings.context ? new k8s.Provider(`${name}-kubernetes`, { context: settings.context }, { parent }) : undefined;
  const declare = (role: "state-volume" | "store-volume", claimName: string, storageClassName: string | undefined, size: string, suffix: string) => {
    const check = new ClaimCheck(
      `${name}-${suffix}-check`,
      { peId: spec.peId, role, name: claimName, namespace: settings.namespace, ...(storageClassName ? { storageClassName } : {}), size, owner, engine },
      { parent },
    );
    return new k8s.core.v1.PersistentVolumeClaim(
      `${name}-${suffix}`,
      {
        metadata: {
          name: claimName,
          namespace: settings.namespace,
          labels: { [LABELS.managed]: "true", [LABELS.role]: role, [LABELS.peId]: spec.peId },
          // A claim of a WaitForFirstConsumer class binds only when its first pod is scheduled, and the
          // provider's own readiness wait never ends for a bound claim on a later update: reseat waits
          // for the pod instead.
          annotations: { [LABELS.owner]: owner, "pulumi.com/skipAwait": "true" },
        },
        spec: { accessModes: ["ReadWriteOnce"], ...(storageClassName ? { storageClassName } : {}), resources: { requests: { storage: size } } },
      },
      // The claim outlives `pulumi destroy` unless the spec opts out explicitly; a later `up` adopts it.
      { parent, dependsOn: [check], retainOnDelete: spec.volume.retainOnDestroy, ...(provider ? { provider } : {}) },
    );
  };
  const claims = [declare("state-volume", volumeName, settings.storageClassName, settings.size, "claim")];
  if (spec.persistentStore.kind === "directory") {
    const store = settings.store;
    claims.push(declare("store-volume", storeClaimNameOf(spec), store?.storageClassName ?? settings.storageClassName, store?.size ?? "1Gi", "store-claim"));
  }
  return claims;
}

/** @pulumi/kubernetes is an optional peer: only PEs with a `kubernetes` section need it. */
function loadPulumiKubernetes(peId: string): typeof import("@pulumi/kubernetes") {
  try {
    return require("@pulumi/kubernetes");
  } catch (error) {
    const why = (error as Error).message.split("\n")[0];
    throw new SpecError(`"${peId}"`, [{ field: "kubernetes", expected: `the package @pulumi/kubernetes installed beside reseat (npm install @pulumi/kubernetes): ${why}` }]);
  }
}

/** The store as the executable sees it; a postgres password stays a Pulumi secret all the way. */
function storeOf(spec: ProcessingElementSpec): pulumi.Input<StoreDesired> {
  const store = spec.persistentStore;
  if (store.kind !== "postgres") return storeDesired(spec);
  const password = store.passwordSecret
    ? new pulumi.Config("reseat").requireSecret(store.passwordSecret)
    : pulumi.secret(store.password as pulumi.Input<string>);
  return password.apply((secret) => storeDesired(spec, secret));
}

/**
 * The secrets that reach the PE's engine and its registry (TLS key, ssh key, registry password), as
 * one Pulumi secret: encrypted in state like the store password, and never part of a label or output.
 */
function engineCredentialsOf(spec: ProcessingElementSpec): pulumi.Output<EngineCredentials> | undefined {
  const docker = spec.docker;
  const sshKeyGiven = docker?.ssh?.privateKey !== undefined || docker?.ssh?.privateKeySecret !== undefined;
  if (!docker?.tls && !sshKeyGiven && !docker?.registryAuth) return undefined;
  const config = new pulumi.Config("reseat");
  const secret = (value: unknown, configKey: string | undefined): pulumi.Output<string> =>
    configKey ? config.requireSecret(configKey) : pulumi.secret(value as pulumi.Input<string>);
  const parts = {
    tlsKey: docker.tls ? secret(docker.tls.key, docker.tls.keySecret) : undefined,
    sshKey: sshKeyGiven ? secret(docker.ssh!.privateKey, docker.ssh!.privateKeySecret) : undefined,
    registryPassword: docker.registryAuth ? secret(docker.registryAuth.password, docker.registryAuth.passwordSecret) : undefined,
  };
  return pulumi.secret(
    pulumi.all(parts).apply(({ tlsKey, sshKey, registryPassword }): EngineCredentials => ({
      ...(docker.tls && tlsKey ? { tls: { ca: docker.tls.ca, cert: docker.tls.cert, key: tlsKey } } : {}),
      ...(sshKey ? { ssh: { privateKey: sshKey } } : {}),
      ...(docker.registryAuth && registryPassword ? { registryAuth: { server: docker.registryAuth.server, username: docker.registryAuth.username, password: registryPassword } } : {}),
    })),
  );
}
