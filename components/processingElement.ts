// ProcessingElement: one declaration gives a PE's state volume (its own resource, kept on destroy by
// default) and its executable (replaced delete-before-replace, re-bound to the kept volume).
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { ClaimCheck } from "../src/provider/claimCheck";
import { Executable, ExecutableArgs } from "../src/provider/executable";
import { StateVolume } from "../src/provider/stateVolume";
import type { OutputField } from "@reseat/state/contract";
import type { StoreDesired } from "../src/backend/backend";
import type { EngineCredentials } from "../src/backend/engineCredentials";
import { ProcessingElementInput, ProcessingElementSpec, SpecError, parseProcessingElement, volumeNameOf } from "../src/schema/processingElement";
import { EXECUTABLE_INPUT_SOURCES, STORE_SOURCE_FIELDS, engineTarget, storeClaimNameOf, storeDesired, volumeOwner } from "../src/schema/desired";
import { SpecField, containsDeferred, isDeferred, parseKnownProcessingElement, specFields, withoutSecretValues } from "../src/schema/inputs";
import { LABELS } from "../src/backend/backend";
import { declareInProgram } from "../src/schema/uniqueness";

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

/** The compiler holds this interface to the contract's one list of output fields (all but the observation's own time). */
export type OutputsCoverTheContract = Exclude<OutputField, "commitStatusAt"> extends keyof ProcessingElementOutputs ? true : never;
const outputsCoverTheContract: OutputsCoverTheContract = true;
void outputsCoverTheContract;

/**
 * Resource options that make Pulumi replace a resource. A component has no provider and is never
 * replaced, so on a PE, group or fleet they would do nothing: they are taken off the component and
 * given to what is replaced — each PE's Executable (`<name>-executable`), or a fleet's Fleet resource.
 * `replaceOnChanges` then names that resource's input properties (see docs/spec.md).
 */
export type ReplacementOptions = Pick<pulumi.CustomResourceOptions, "replaceOnChanges" | "replacementTrigger" | "replaceWith">;

/** Splits a component's options into its own and the replacement options for its Executable(s) / Fleet. */
export function splitReplacementOptions<T extends pulumi.ResourceOptions>(
  opts: T | undefined,
): { own: Omit<T, keyof ReplacementOptions>; replacement: ReplacementOptions } {
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
  return parseProcessingElement(withDefaultPeId(name, args), `"${name}"`);
}

/** The peId is the resource name unless the spec gives one. */
function withDefaultPeId(name: string, args: unknown): unknown {
  return args && typeof args === "object" && !isDeferred(args) && !("peId" in args) ? { ...args, peId: name } : args;
}

/**
 * A value, or a Pulumi Output or Promise of it, at any depth: a field, a value of a map (an env value),
 * an item of a list. A secret Output stays secret: the Executable input it feeds is stored encrypted.
 */
export type DeepInput<T> = T extends string | number | boolean | null | undefined
  ? pulumi.Input<T>
  : T extends { apply: unknown }
    ? T
    : T extends readonly (infer U)[]
      ? pulumi.Input<DeepInput<U>[]>
      : T extends object
        ? pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }>
        : pulumi.Input<T>;

/** A section that must be a plain object (docs/spec.md: fields known at construction); `Plain` fields too. */
type Section<T, Plain extends string = never> = T extends object ? { [K in keyof T]: K extends Plain ? T[K] : DeepInput<T[K]> } : T;
type SpecInput = Omit<ProcessingElementInput, "peId">;
type StructuralField = "volume" | "persistentStore" | "kubernetes" | "docker";
type DockerInput = NonNullable<SpecInput["docker"]>;

/**
 * A PE spec as a program gives it: every field a pulumi.Input, deeply (see DeepInput), but for the
 * few that decide which resources are declared (KNOWN_AT_CONSTRUCTION in src/schema/inputs.ts).
 */
export type ProcessingElementArgs = { [K in keyof Omit<SpecInput, StructuralField>]: DeepInput<Omit<SpecInput, StructuralField>[K]> } & {
  peId?: pulumi.Input<string>;
  volume?: Section<NonNullable<SpecInput["volume"]>, "retainOnDestroy">;
  persistentStore?: Section<NonNullable<SpecInput["persistentStore"]>, "kind" | "passwordSecret">;
  kubernetes?: Section<NonNullable<SpecInput["kubernetes"]>, "context">;
  docker?: {
    host?: pulumi.Input<string>;
    tls?: Section<NonNullable<DockerInput["tls"]>, "keySecret">;
    ssh?: Section<NonNullable<DockerInput["ssh"]>, "privateKeySecret">;
    registryAuth?: Section<NonNullable<DockerInput["registryAuth"]>, "passwordSecret">;
  };
};

/** The fields a collision between two PEs of one program is judged on (src/schema/uniqueness.ts). */
const UNIQUENESS_FIELDS = ["peId", "volume", "ports", "network", "kubernetes", "docker"] as const satisfies readonly SpecField[];

/**
 * The spec's fields as the program gave them, some of them Outputs. Each value the component declares
 * is derived from the fields it reads (EXECUTABLE_INPUT_SOURCES): plain when those are plain — exactly
 * what a plain spec always gave, so existing stacks see no change — else an Output of just those
 * fields, so that only they make it secret, or unknown during a preview.
 */
class SpecInputs {
  constructor(readonly raw: Record<string, unknown>) {}

  derive<F extends SpecField, T>(
    from: readonly F[],
    compute: (spec: Pick<ProcessingElementSpec, F>) => T,
    { secrets = false }: { secrets?: boolean } = {},
  ): pulumi.Input<T> {
    const values = from.map((field) => (secrets ? this.raw[field] : (withoutSecretValues({ [field]: this.raw[field] }) as Record<string, unknown>)[field]));
    if (!values.some((value) => containsDeferred(value, { secrets: true }))) return compute(specFields(from, values));
    // An invalid resolved value yields nothing here: the spec's validation (the PE's gate) reports it.
    return pulumi.all(values).apply((resolved) => {
      try {
        return compute(specFields(from, resolved));
      } catch {
        return undefined as T;
      }
    });
  }

  /** The fields parsed now, when none of them waits for an Output; else undefined. */
  knownNow<F extends SpecField>(from: readonly F[]): Pick<ProcessingElementSpec, F> | undefined {
    const values = from.map((field) => (withoutSecretValues({ [field]: this.raw[field] }) as Record<string, unknown>)[field]);
    return values.some((value) => containsDeferred(value)) ? undefined : specFields(from, values);
  }

  /** A field that must be known at construction (KNOWN_AT_CONSTRUCTION): validated plain by then. */
  plain<T>(...path: string[]): T | undefined {
    let node: unknown = this.raw;
    for (const key of path) node = node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined;
    return node as T | undefined;
  }
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
  /** The validated spec, when every field was known at construction (no Output waited); else undefined. */
  readonly spec: ProcessingElementSpec | undefined;

  /**
   * @param args a PE spec (see the README's spec table); any field, and any value inside one, may be a
   *   pulumi.Input (an Output, a secret, a Promise) but for those that decide which resources are
   *   declared (docs/spec.md). What the program holds is validated before anything is registered, so
   *   an invalid spec fails at preview and creates nothing; a value that resolves later is validated
   *   when it resolves, before the PE's resources are registered, with the same field-named errors.
   */
  constructor(name: string, args: ProcessingElementArgs, opts?: pulumi.ComponentResourceOptions) {
    const subject = `"${name}"`;
    const raw = withDefaultPeId(name, args) as Record<string, unknown>;
    const known = parseKnownProcessingElement(raw, subject);
    const fields = new SpecInputs(raw);
    // Collisions with the program's other PEs: now when the fields they are judged on are known, else
    // when those resolve (below).
    const judgedNow = known.spec ?? fields.knownNow(UNIQUENESS_FIELDS);
    if (judgedNow) {
      const duplicates = declareInProgram({ subject, spec: judgedNow as ProcessingElementSpec });
      if (duplicates.length) throw new SpecError(subject, duplicates);
    }
    const { own, replacement } = splitReplacementOptions(opts);
    super(PROCESSING_ELEMENT_TYPE, name, {}, own);
    this.spec = known.spec;

    // Values that resolve later are validated when they do, as one spec (one message naming every bad
    // field); the PE's resources wait for it, so an invalid value registers nothing.
    const validated = known.deferred.length
      ? pulumi.output(raw).apply((resolved) => {
          const spec = parseProcessingElement(resolved, subject);
          if (!judgedNow) {
            const duplicates = declareInProgram({ subject, spec });
            if (duplicates.length) throw new SpecError(subject, duplicates);
          }
          return true;
        })
      : undefined;
    const afterValidation = (resources: pulumi.Resource[]): pulumi.Input<pulumi.Resource[]> => (validated ? validated.apply(() => resources) : resources);

    const peId = fields.derive(["peId"], (spec) => spec.peId);
    const owner = fields.derive(["peId"], (spec) => volumeOwner(pulumi.getProject(), pulumi.getStack(), spec.peId));
    const credentials = engineCredentialsOf(fields);
    const executableInputs = Object.fromEntries(
      Object.entries(EXECUTABLE_INPUT_SOURCES).map(([input, source]) => [
        input,
        fields.derive(source.from, source.value as (spec: Partial<ProcessingElementSpec>) => unknown),
      ]),
    ) as ExecutableArgs;
    const store = storeOf(fields);
    const secretEnv = secretEnvOf(raw.env);
    if (secretEnv) Object.assign(executableInputs, { secretEnv });

    if (fields.plain("kubernetes") !== undefined) {
      const claims = kubernetesClaims(this, name, fields, owner, afterValidation([]));
      this.volume = claims[0]!;
      this.executable = new Executable(
        `${name}-executable`,
        { ...executableInputs, owner, volumeName: claims[0]!.metadata.name, store },
        { ...replacement, parent: this, dependsOn: afterValidation(claims), deleteBeforeReplace: false },
      );
    } else {
      const volume = new StateVolume(
        `${name}-volume`,
        {
          peId,
          name: fields.derive(["peId", "volume"], (spec) => volumeNameOf(spec)),
          driver: fields.derive(["volume"], (spec) => spec.volume.driver),
          owner,
          engine: fields.derive(["kubernetes", "docker"], (spec) => engineTarget(spec)),
          engineCredentials: credentials,
        },
        // The volume outlives `pulumi destroy` unless the spec opts out explicitly.
        {
          parent: this,
          retainOnDelete: fields.plain<boolean>("volume", "retainOnDestroy") ?? true,
          protect: false,
          ...(validated ? { dependsOn: afterValidation([]) } : {}),
        },
      );
      this.volume = volume;
      this.executable = new Executable(
        `${name}-executable`,
        { ...executableInputs, owner, volumeName: volume.name, store, engineCredentials: credentials },
        { ...replacement, parent: this, dependsOn: afterValidation([volume]), deleteBeforeReplace: false },
      );
    }

    this.peId = pulumi.output(peId);
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
function kubernetesClaims(
  parent: pulumi.Resource,
  name: string,
  fields: SpecInputs,
  owner: pulumi.Input<string>,
  afterValidation: pulumi.Input<pulumi.Resource[]>,
): k8s.core.v1.PersistentVolumeClaim[] {
  const context = fields.plain<string>("kubernetes", "context");
  const k8s = loadPulumiKubernetes(name);
  const provider = context ? new k8s.Provider(`${name}-kubernetes`, { context }, { parent }) : undefined;
  const peId = fields.derive(["peId"], (spec) => spec.peId);
  const namespace = fields.derive(["kubernetes"], (spec) => spec.kubernetes!.namespace);
  const engine = fields.derive(["kubernetes", "docker"], (spec) => engineTarget(spec));
  const retainOnDelete = fields.plain<boolean>("volume", "retainOnDestroy") ?? true;
  // The state claim is taken first, the store claim after it: of two stacks racing for both, the one
  // that takes the state claim takes the store claim too (never one each, and no winner).
  let stateCheck: ClaimCheck | undefined;
  const declare = (
    role: "state-volume" | "store-volume",
    claimName: pulumi.Input<string>,
    storageClassName: pulumi.Input<string | undefined>,
    size: pulumi.Input<string>,
    suffix: string,
  ) => {
    const check = new ClaimCheck(
      `${name}-${suffix}-check`,
      { peId, role, name: claimName, namespace, storageClassName: storageClassName as pulumi.Input<string>, size, owner, engine },
      { parent, dependsOn: stateCheck ? [stateCheck] : afterValidation },
    );
    if (role === "state-volume") stateCheck = check;
    return new k8s.core.v1.PersistentVolumeClaim(
      `${name}-${suffix}`,
      {
        metadata: {
          name: claimName,
          namespace,
          labels: { [LABELS.managed]: "true", [LABELS.role]: role, [LABELS.peId]: peId },
          // A claim of a WaitForFirstConsumer class binds only when its first pod is scheduled, and the
          // provider's own readiness wait never ends for a bound claim on a later update: reseat waits
          // for the pod instead.
          annotations: { [LABELS.owner]: owner, "pulumi.com/skipAwait": "true" },
        },
        spec: { accessModes: ["ReadWriteOnce"], storageClassName: storageClassName as pulumi.Input<string>, resources: { requests: { storage: size } } },
      },
      // The claim outlives `pulumi destroy` unless the spec opts out explicitly; a later `up` adopts it.
      { parent, dependsOn: [check], retainOnDelete, ...(provider ? { provider } : {}) },
    );
  };
  const claims = [
    declare(
      "state-volume",
      fields.derive(["peId", "volume"], (spec) => volumeNameOf(spec)),
      fields.derive(["kubernetes"], (spec) => spec.kubernetes!.storageClassName),
      fields.derive(["kubernetes"], (spec) => spec.kubernetes!.size),
      "claim",
    ),
  ];
  if ((fields.plain<string>("persistentStore", "kind") ?? "directory") === "directory") {
    claims.push(
      declare(
        "store-volume",
        fields.derive(["peId", "volume"], (spec) => storeClaimNameOf(spec)),
        fields.derive(["kubernetes"], (spec) => spec.kubernetes!.store?.storageClassName ?? spec.kubernetes!.storageClassName),
        fields.derive(["kubernetes"], (spec) => spec.kubernetes!.store?.size ?? "1Gi"),
        "store-claim",
      ),
    );
  }
  return claims;
}

/** @pulumi/kubernetes is an optional peer: only PEs with a `kubernetes` section need it. */
function loadPulumiKubernetes(name: string): typeof import("@pulumi/kubernetes") {
  try {
    return require("@pulumi/kubernetes");
  } catch (error) {
    const why = (error as Error).message.split("\n")[0];
    throw new SpecError(`"${name}"`, [
      { field: "kubernetes", expected: `the package @pulumi/kubernetes installed beside reseat (npm install @pulumi/kubernetes): ${why}` },
    ]);
  }
}

/**
 * Which env names hold Pulumi secrets (sorted), for the Executable's `secretEnv`: the engine records the
 * spec with those values blanked (docs/spec.md). A value is secret when it is a secret Output; every
 * name is when the env object itself is one. Undefined — no input at all, so a stack recorded before
 * the input existed sees no change — when no env value is an Output; the Output resolves to undefined
 * when none of them is secret. The names are not secret: only values are.
 */
export function secretEnvOf(env: unknown): pulumi.Output<string[] | undefined> | undefined {
  if (env === undefined || env === null || !containsDeferred(env)) return undefined;
  let names: pulumi.Output<string[]>;
  if (isDeferred(env)) {
    const whole = pulumi.output(env as pulumi.Input<Record<string, unknown>>);
    names = pulumi
      .output(pulumi.isSecret(whole))
      .apply((secret) => (secret ? pulumi.unsecret(whole.apply((resolved) => Object.keys(resolved ?? {}))) : pulumi.output<string[]>([])));
  } else {
    const deferred = Object.entries(env as Record<string, unknown>).filter(([, value]) => isDeferred(value));
    names = pulumi
      .output(Promise.all(deferred.map(async ([name, value]) => ((await pulumi.isSecret(pulumi.output(value))) ? [name] : []))))
      .apply((lists) => lists.flat());
  }
  return names.apply((list) => (list.length ? [...list].sort() : undefined));
}

/** The store as the executable sees it; a postgres password stays a Pulumi secret all the way. */
function storeOf(fields: SpecInputs): pulumi.Input<StoreDesired> {
  if (fields.plain<string>("persistentStore", "kind") !== "postgres")
    return fields.derive(STORE_SOURCE_FIELDS, (spec) => storeDesired(spec as ProcessingElementSpec));
  const configKey = fields.plain<string>("persistentStore", "passwordSecret");
  const fromConfig = configKey ? new pulumi.Config("reseat").requireSecret(configKey) : undefined;
  const spec = fields.derive(STORE_SOURCE_FIELDS, (resolved) => resolved as ProcessingElementSpec, { secrets: true });
  return pulumi.secret(
    pulumi.all([spec, fromConfig]).apply(([resolved, configured]) => {
      const store = resolved.persistentStore as { password?: string };
      return storeDesired(resolved as ProcessingElementSpec, configured ?? store.password);
    }),
  );
}

/**
 * The secrets that reach the PE's engine and its registry (TLS key, ssh key, registry password), as
 * one Pulumi secret: encrypted in state like the store password, and never part of a label or output.
 */
function engineCredentialsOf(fields: SpecInputs): pulumi.Output<EngineCredentials> | undefined {
  const section = (...path: string[]) => fields.plain<Record<string, unknown>>("docker", ...path);
  const sshKeyGiven = section("ssh")?.privateKey !== undefined || section("ssh")?.privateKeySecret !== undefined;
  if (!section("tls") && !sshKeyGiven && !section("registryAuth")) return undefined;
  const config = new pulumi.Config("reseat");
  const fromConfig = (key: unknown) => (typeof key === "string" ? config.requireSecret(key) : undefined);
  const configured = {
    tlsKey: fromConfig(section("tls")?.keySecret),
    sshKey: fromConfig(section("ssh")?.privateKeySecret),
    registryPassword: fromConfig(section("registryAuth")?.passwordSecret),
  };
  const docker = fields.derive(["docker"], (spec) => spec.docker!, { secrets: true });
  return pulumi.secret(
    pulumi.all([docker, configured]).apply(([resolved, secrets]): EngineCredentials => {
      const tlsKey = secrets.tlsKey ?? (resolved.tls?.key as string | undefined);
      const sshKey = secrets.sshKey ?? (resolved.ssh?.privateKey as string | undefined);
      const registryPassword = secrets.registryPassword ?? (resolved.registryAuth?.password as string | undefined);
      return {
        ...(resolved.tls && tlsKey ? { tls: { ca: resolved.tls.ca, cert: resolved.tls.cert, key: tlsKey } } : {}),
        ...(sshKeyGiven && sshKey ? { ssh: { privateKey: sshKey } } : {}),
        ...(resolved.registryAuth && registryPassword
          ? { registryAuth: { server: resolved.registryAuth.server, username: resolved.registryAuth.username, password: registryPassword } }
          : {}),
      };
    }),
  );
}
