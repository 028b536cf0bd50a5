// What the dynamic providers actually do (`providers` at the end). Pulumi stores, for each resource,
// only a line that loads this module by package identity (`reseat/provider/runtime`: see
// reseatResource.ts), so state holds no path, engine client or other native object. State written by
// earlier releases names other things here, which therefore keep their names and first parameters:
// 0.2's serialized closures call checkExecutable, readExecutable, deleteVolume … directly, and 0.1's
// name this file by absolute path (dist/src/provider/runtime.js). The next `up` rewrites such a record
// in place (recordOutdated).
import { OUTPUT_FIELDS, RESEAT_TOOL_ENV } from "@reseat/state/contract";
import type { Backend, EngineIdentity, ExecutableDesired, VolumeClaim, VolumeInfo } from "../backend/backend";
import { openBackend } from "../backend/open";
import type { EngineCredentials } from "../backend/engineCredentials";
import { holderName } from "../lease/lease";
import { planExecutable, specHash } from "../plan/executablePlan";
import { changedReplaceOnChanges } from "../plan/replaceOnChanges";
import type { CommitOutputs } from "../plan/commitStatus";
import { observeCommits, observeRevert, RevertOutputs } from "./observe";
import { checkImageId, imageIdForUp } from "./images";
import { validateExecutableInputs } from "../schema/inputs";
import * as fleet from "./fleetRuntime";
import { planVolume, VolumeFields } from "../plan/volumePlan";
import { assertSameEngine, recordOutdated } from "../plan/engineRecord";
import { applyControl, checkOwner, reseat, retire, ReseatResult, VolumeOwnedError } from "../replacement/reseat";
import { ClaimFields, planClaim } from "../plan/claimPlan";
import type { dynamic } from "@pulumi/pulumi";
import { appendFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

type DynamicProvider = dynamic.ResourceProvider;

export type { RevertOutputs };

/** What the Executable resource observes, beside its inputs. */
export interface ExecutableObservation extends CommitOutputs, RevertOutputs, Omit<ReseatResult, "adopted" | "retired" | "reverted"> {}

/** Beside the spec, the state records the engine the PE lives on (set by check, compared on every call). */
export type ExecutableState = ExecutableDesired & ExecutableObservation & { engineIdentity?: EngineIdentity };

/** What the provider records beside the spec in a resource's inputs (never given to the engine). */
type Recorded = { engineIdentity?: EngineIdentity; __provider?: string; replaceOnChanges?: string[] };

/** What the Executable observes beside its inputs: the contract's one list of output fields. */
const OBSERVATION_FIELDS: readonly (keyof ExecutableObservation)[] = OUTPUT_FIELDS;

/** Inputs may carry the secrets that reach the PE's engine and registry (a Pulumi secret input). */
type WithCredentials = { engineCredentials?: EngineCredentials };

function backend(desired: (Pick<ExecutableDesired, "engine"> & WithCredentials) | undefined): Backend {
  return openBackend(desired?.engine, desired?.engineCredentials);
}

/**
 * The desired spec the engine-neutral routine sees: nothing secret about reaching the engine, and
 * none of the record (engine identity, the host's serialized provider), which is Pulumi's business.
 */
function withoutCredentials<T extends WithCredentials & Recorded>(inputs: T): Omit<T, "engineCredentials" | keyof Recorded> {
  const { engineCredentials: _secret, engineIdentity: _engine, __provider: _provider, replaceOnChanges: _replaceOnChanges, ...rest } = inputs;
  return rest;
}

/**
 * The engine this run reaches, after checking it is the one the state recorded for the resource:
 * before anything is pulled or created, and before "nothing runs" can be taken to mean "gone".
 */
async function sameEngine(engine: Backend, subject: string, recorded: EngineIdentity | undefined): Promise<EngineIdentity> {
  const current = await engine.identity();
  assertSameEngine(subject, recorded, current);
  return current;
}

/** Credentials rotated (same engine, new key or password) are recorded in place: no new executable. */
function sameCredentials(a: WithCredentials, b: WithCredentials): boolean {
  return JSON.stringify(a.engineCredentials ?? null) === JSON.stringify(b.engineCredentials ?? null);
}

/**
 * Resolves the image without pulling (check runs in `pulumi preview` too: it must change nothing on
 * the engine), on the engine the PE was recorded on; records that engine in the inputs. An image the
 * engine lacks gets a stand-in id ("resolved at up …"): the preview shows the replacement, and
 * create pulls the image before anything is stopped.
 */
export async function checkExecutable(
  news: ExecutableDesired & WithCredentials,
  olds?: Partial<ExecutableState>,
): Promise<ExecutableDesired & Required<Pick<Recorded, "engineIdentity">>> {
  validateExecutableInputs(news as unknown as Record<string, unknown>); // late-resolved spec values; unknowns skipped
  const engine = backend(news);
  const engineIdentity = await sameEngine(engine, `processing element "${news.peId}"`, olds?.engineIdentity);
  return { ...news, imageId: await checkImageId(engine, news.imageRef), engineIdentity };
}

/**
 * Create-before-delete: `create` performs the whole staged swap (prepare the new executable while the
 * old one serves, stop the old one, start the new one, revert on failure) under the PE's lock, which
 * is what keeps one writer per volume; the replaced resource's `delete` then removes only executables
 * of its own spec (already stopped). A failed replacement leaves Pulumi's state on the old resource,
 * whose spec is the one serving again after the revert.
 */
export function diffExecutable(olds: ExecutableState & WithCredentials & Recorded, news: ExecutableDesired & WithCredentials & Recorded) {
  if (news.engineIdentity) assertSameEngine(`processing element "${olds.peId}"`, olds.engineIdentity, news.engineIdentity);
  const plan = planExecutable(olds, news);
  const outdated = recordOutdated(olds as never, news as never);
  // Paths the resource's replaceOnChanges option names: a change there replaces even a field applied in place.
  const forced = changedReplaceOnChanges(olds as never, news as never, news.replaceOnChanges, [
    ...OBSERVATION_FIELDS,
    "__provider",
    "engineIdentity",
    "declaredBy",
  ]);
  const optionChanged = JSON.stringify(olds.replaceOnChanges ?? []) !== JSON.stringify(news.replaceOnChanges ?? []);
  return {
    changes: plan.changes || !sameCredentials(olds, news) || outdated.length > 0 || forced.length > 0 || optionChanged,
    replaces: [...new Set([...plan.replaces, ...forced])],
    deleteBeforeReplace: false,
  };
}

export async function createExecutable(inputs: ExecutableDesired & WithCredentials & Recorded): Promise<{ id: string; outs: ExecutableState }> {
  const engine = backend(inputs);
  const engineIdentity = await sameEngine(engine, `processing element "${inputs.peId}"`, inputs.engineIdentity);
  // The pull check left to `up`, while the old executable still serves: state records the real image id.
  inputs = { ...inputs, imageId: await imageIdForUp(engine, inputs.imageRef, inputs.imageId, `processing element "${inputs.peId}"`) };
  // A new resource gets executables of its own (see ExecutableDesired.declaredBy): a forced replacement
  // with unchanged inputs (`--replace`, replacementTrigger, a rotated secret) is a real replacement.
  const declaredBy = randomUUID();
  const {
    adopted: _adopted,
    retired: _retired,
    reverted: _reverted,
    ...observed
  } = await reseat(engine, { ...withoutCredentials(inputs), declaredBy }, { holder: holderName("pulumi") });
  const commits = await observeCommits(engine, inputs.volumeName, observed.generation);
  return { id: observed.executableId, outs: { ...inputs, engineIdentity, declaredBy, ...observed, ...commits, reverted: false, failedSpecHash: null } };
}

/** Finds the PE's live executable by identity; reports it gone (empty id) when none runs. */
export async function readExecutable(id: string, props: ExecutableState & WithCredentials): Promise<{ id: string; props: ExecutableState }> {
  const engine = backend(props);
  await sameEngine(engine, `processing element "${props.peId}"`, props.engineIdentity);
  const byId = await engine.inspectExecutable(id);
  let live = byId?.running ? byId : undefined;
  if (!live) {
    // Reseated since (by the controller, or a revert): the PE's running executable, preferably of this spec.
    const hash = specHash(props);
    const running = (await engine.listExecutables(props.peId))
      .filter((e) => e.running)
      .sort((a, b) => Number(b.specHash === hash) - Number(a.specHash === hash) || b.generation - a.generation)[0];
    live = running ? await engine.inspectExecutable(running.id) : undefined;
  }
  if (!live) return { id: "", props };
  return {
    id: live.id,
    props: {
      ...props,
      executableId: live.id,
      executableName: live.name,
      generation: live.generation,
      replacedAt: live.id === props.executableId ? props.replacedAt : (live.startedAt ?? props.replacedAt),
      ...(await observeCommits(engine, props.volumeName, live.generation)),
      ...(await observeRevert(engine, props.volumeName)),
    },
  };
}

export async function updateExecutable(olds: ExecutableState, news: ExecutableDesired & WithCredentials & Recorded): Promise<{ outs: ExecutableState }> {
  const engine = backend(news);
  await sameEngine(engine, `processing element "${olds.peId}"`, olds.engineIdentity);
  // A stand-in id reaches update only when state holds one as well (any imageId change replaces): never record one.
  news = { ...news, imageId: await imageIdForUp(engine, news.imageRef, news.imageId, `processing element "${olds.peId}"`) };
  if (olds.commitIntervalMs !== news.commitIntervalMs || JSON.stringify(olds.failureBackoff) !== JSON.stringify(news.failureBackoff)) {
    await applyControl(engine, withoutCredentials(news));
  }
  const kept = Object.fromEntries(OBSERVATION_FIELDS.map((field) => [field, olds[field]])) as unknown as ExecutableObservation;
  return { outs: { ...news, ...kept, ...(olds.declaredBy ? { declaredBy: olds.declaredBy } : {}) } };
}

export async function deleteExecutable(props: ExecutableState & WithCredentials): Promise<void> {
  const engine = backend(props);
  await sameEngine(engine, `processing element "${props.peId}"`, props.engineIdentity);
  const desired = withoutCredentials(props);
  // Only this resource's own executables; one recorded before 0.4 (no declarer) also only its spec's.
  await retire(engine, desired, holderName("pulumi"), { sameDeclarer: true, ...(desired.declaredBy ? {} : { specHash: specHash(desired) }) });
}

export interface VolumeState extends VolumeFields, WithCredentials {
  createdAt?: string;
  adopted: boolean;
  engineIdentity?: EngineIdentity;
}

function volumeSubject(volume: Partial<VolumeFields> | undefined, name?: string): string {
  return `state volume "${volume?.name ?? name}" of processing element "${volume?.peId}"`;
}

/** Records the engine in the volume's inputs, refusing another engine than the recorded one. */
export async function checkVolume(
  news: VolumeFields & WithCredentials,
  olds?: Partial<VolumeState>,
): Promise<VolumeFields & Required<Pick<Recorded, "engineIdentity">>> {
  const engineIdentity = await sameEngine(backend(news), volumeSubject(news), olds?.engineIdentity);
  return { ...news, engineIdentity };
}

export function diffVolume(olds: VolumeState, news: VolumeFields & Recorded) {
  if (news.engineIdentity) assertSameEngine(volumeSubject(olds), olds.engineIdentity, news.engineIdentity);
  planVolume(olds, news);
  return { changes: recordOutdated(olds as never, news as never).length > 0 };
}

/** Only the record changes (provider, engine, credentials): the volume itself never changes in place. */
export async function updateVolume(olds: VolumeState, news: VolumeFields & WithCredentials & Recorded): Promise<{ outs: VolumeState }> {
  await sameEngine(backend(news), volumeSubject(olds), olds.engineIdentity);
  return { outs: { ...news, createdAt: olds.createdAt, adopted: olds.adopted } };
}

/**
 * Claims the state volume for this PE: creates it, or adopts it when it already exists for the same
 * owner (kept by an earlier destroy). The claim is atomic on the engine, so of two racing claims
 * (two PEs, two stacks, two machines) exactly one owns the volume and the other fails here.
 */
export async function createVolume(inputs: VolumeFields & WithCredentials & Recorded): Promise<{ id: string; outs: VolumeState }> {
  const engine = backend(inputs);
  const engineIdentity = await sameEngine(engine, volumeSubject(inputs), inputs.engineIdentity);
  const claim: VolumeClaim = { name: inputs.name, driver: inputs.driver, peId: inputs.peId, owner: inputs.owner ?? `PE "${inputs.peId}"` };
  const volume = await engine.claimVolume(claim);
  checkOwner(volume, { peId: inputs.peId, owner: inputs.owner });
  if (volume.driver !== inputs.driver) {
    throw new Error(`reseat: volume "${inputs.name}" exists with driver "${volume.driver}", not "${inputs.driver}" (volume.driver)`);
  }
  return { id: volume.name, outs: { ...inputs, engineIdentity, createdAt: volume.createdAt, adopted: !volume.created } };
}

export async function readVolume(id: string, props: VolumeState): Promise<{ id: string; props: VolumeState }> {
  const engine = backend(props);
  await sameEngine(engine, volumeSubject(props, id), props.engineIdentity);
  const found = await engine.inspectVolume(id);
  return found ? { id, props: { ...props, driver: found.driver } } : { id: "", props };
}

/** `props` is absent when a provider serialized by an older release (923fd1d and before) calls this. */
export async function deleteVolume(id: string, props?: VolumeState): Promise<void> {
  const engine = backend(props);
  await sameEngine(engine, volumeSubject(props, id), props?.engineIdentity);
  const holders = await engine.runningOnVolume(id);
  if (holders.length) {
    throw new Error(`reseat: volume "${id}" is still mounted by ${holders.map((h) => h.name).join(", ")}; not deleting it`);
  }
  await engine.removeVolume(id);
}

/**
 * A PE's claim on Kubernetes may exist already: kept by an earlier destroy for the same owner (adopted),
 * or someone else's (refused, before @pulumi/kubernetes would apply onto it).
 */
export async function checkClaim(inputs: ClaimFields): Promise<ClaimFields> {
  return checkClaimOn(backend(inputs), inputs);
}

async function checkClaimOn(engine: Backend, inputs: ClaimFields): Promise<ClaimFields> {
  const existing = await engine.inspectVolume(inputs.name);
  if (existing) {
    const role = inputs.role === "store-volume" ? "the directory store's claim" : "state volume (claim)";
    if (existing.peId === undefined)
      throw new VolumeOwnedError(inputs.name, `no reseat processing element (${role} exists and was not made by reseat)`, inputs.owner);
    checkOwner(existing, { peId: inputs.peId, owner: inputs.owner });
  }
  return inputs;
}

/**
 * At `up`, the claim is taken before @pulumi/kubernetes applies it (the claim resource depends on the
 * ClaimCheck): created here, atomically, for this owner (create; AlreadyExists: read who owns it). Of
 * two stacks racing for one claim the loser stops here with the error naming the volume and its owner,
 * never at the later apply (a Server-Side Apply field conflict on the owner annotation, naming no one).
 * The apply then upserts the claim made here, with the same fields.
 */
export async function takeClaim(inputs: ClaimFields): Promise<ClaimFields> {
  return takeClaimOn(backend(inputs), inputs);
}

/** takeClaim on a given engine (a fake one in unit tests). */
export async function takeClaimOn(
  engine: Backend & { claimStoreVolume?(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> },
  inputs: ClaimFields,
): Promise<ClaimFields> {
  const claim: VolumeClaim = { name: inputs.name, driver: inputs.storageClassName ?? "", peId: inputs.peId, owner: inputs.owner, size: inputs.size };
  const take = inputs.role === "store-volume" ? engine.claimStoreVolume?.bind(engine) : engine.claimVolume.bind(engine);
  // An engine without a way to make a store claim: checked only, as before (the apply makes it).
  if (!take) return checkClaimOn(engine, inputs);
  const taken = await take(claim);
  if (taken.peId === undefined) {
    const role = inputs.role === "store-volume" ? "the directory store's claim" : "state volume (claim)";
    throw new VolumeOwnedError(inputs.name, `no reseat processing element (${role} exists and was not made by reseat)`, inputs.owner);
  }
  checkOwner(taken, { peId: inputs.peId, owner: inputs.owner });
  return inputs;
}

export function diffClaim(olds: ClaimFields, news: ClaimFields) {
  return planClaim(olds, news);
}

/**
 * The dynamic providers Pulumi's dynamic-provider host runs. What Pulumi stores for each resource is
 * only the line that loads one of these by package identity (see reseatResource.ts), so every method
 * here may change between releases without touching state.
 */
export const providers = {
  Executable: traced("Executable", {
    check: async (olds, news) => ({ inputs: await checkExecutable(news as never, olds as never) }),
    diff: async (_id, olds, news) => diffExecutable(olds as never, news as never),
    create: async (inputs) => createExecutable(inputs as never),
    read: async (id, props) => readExecutable(id, props as never),
    update: async (_id, olds, news) => updateExecutable(olds as never, news as never),
    delete: async (_id, props) => deleteExecutable(props as never),
  }),
  StateVolume: traced("StateVolume", {
    check: async (olds, news) => ({ inputs: await checkVolume(news as never, olds as never) }),
    diff: async (_id, olds, news) => diffVolume(olds as never, news as never),
    create: async (inputs) => createVolume(inputs as never),
    read: async (id, props) => readVolume(id, props as never),
    update: async (_id, olds, news) => updateVolume(olds as never, news as never),
    delete: async (id, props) => deleteVolume(id, props as never),
  }),
  // N members in one resource, rolled by reseat itself (fleetRuntime.ts).
  Fleet: traced("Fleet", {
    check: async (olds, news) => ({ inputs: await fleet.checkFleet(news as never, olds as never) }),
    diff: async (_id, olds, news) => fleet.diffFleet(olds as never, news as never),
    create: async (inputs) => fleet.createFleet(inputs as never),
    read: async (id, props) => fleet.readFleet(id, props as never),
    update: async (id, olds, news) => fleet.updateFleet(id, olds as never, news as never),
    delete: async (_id, props) => fleet.deleteFleet(props as never),
  }),
  // Refuses, in check and diff, a claim reseat must not take; at create takes the claim atomically
  // (the PersistentVolumeClaim resource then applies onto it). Deletes nothing: the claim resource does.
  ClaimCheck: {
    check: async (_olds, news) => ({ inputs: await checkClaim(news as never) }),
    diff: async (_id, olds, news) => diffClaim(olds as never, news as never),
    create: async (inputs) => ({ id: `${inputs.namespace}/${inputs.name}`, outs: await takeClaim(inputs as never) }),
    update: async (_id, _olds, news) => ({ outs: news }),
  },
} satisfies Record<string, DynamicProvider>;

export type ProviderKind = keyof typeof providers;

/**
 * With RESEAT_TRACE_FILE set, each provider call appends two JSON lines to that file (begin and end:
 * kind, method, peId, Unix ms): what the benches read to split a rollout's hand-off between Pulumi and
 * reseat. Unset (the default), the methods are returned as they are.
 */
function traced<P extends DynamicProvider>(kind: string, provider: P): P {
  const file = process.env[RESEAT_TOOL_ENV.traceFile];
  if (!file) return provider;
  const wrapped: Record<string, unknown> = {};
  for (const [method, call] of Object.entries(provider) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    wrapped[method] = async (...args: unknown[]) => {
      const subject = args.find((a): a is { peId?: unknown } => typeof a === "object" && a !== null && "peId" in a)?.peId;
      const line = (phase: string) => appendFileSync(file, `${JSON.stringify({ kind, method, peId: subject, phase, ms: Date.now() })}\n`);
      line("begin");
      try {
        return await call(...args);
      } finally {
        line("end");
      }
    };
  }
  return wrapped as P;
}
