// What the dynamic providers actually do. The serialized provider objects (executable.ts, volume.ts)
// only require() this module by absolute path inside each method, so Pulumi's closure serializer
// never captures engine clients or other native objects (pulumi/pulumi#10480).
import type { ExecutableDesired } from "../backend/backend";
import { DockerBackend, lockHolder } from "../backend/docker/dockerBackend";
import { planExecutable } from "../plan/executablePlan";
import { CommitOutputs, commitOutputs, parseWorkloadStatus } from "../plan/commitStatus";
import { planVolume, VolumeFields } from "../plan/volumePlan";
import { applyControl, reseat, retire, ReseatResult } from "../replacement/reseat";

/** What the Executable resource observes, beside its inputs. */
export interface ExecutableObservation extends CommitOutputs, Omit<ReseatResult, "adopted" | "retired"> {}

export type ExecutableState = ExecutableDesired & ExecutableObservation;

const OBSERVATION_FIELDS: (keyof ExecutableObservation)[] = [
  "executableId",
  "executableName",
  "generation",
  "host",
  "replacedAt",
  "readyAt",
  "lastCommit",
  "commitLagMs",
  "resumedFrom",
  "resumedSeq",
  "lastCommitError",
  "commitStatusAt",
];

function backend(): DockerBackend {
  return new DockerBackend();
}

/** Commit status as the workload last wrote it into the volume. */
async function observeCommits(engine: DockerBackend, executableId: string, mountPath: string, generation: number): Promise<CommitOutputs> {
  const text = await engine.readVolumeFile(executableId, mountPath, ".reseat/status.json").catch(() => undefined);
  return commitOutputs(parseWorkloadStatus(text), generation, new Date());
}

/** Resolves the image before anything is stopped: check runs before the delete of a replacement. */
export async function checkExecutable(news: ExecutableDesired): Promise<ExecutableDesired> {
  return { ...news, imageId: await backend().ensureImage(news.imageRef) };
}

export function diffExecutable(olds: ExecutableState, news: ExecutableDesired) {
  const plan = planExecutable(olds, news);
  return { changes: plan.changes, replaces: plan.replaces, deleteBeforeReplace: true };
}

export async function createExecutable(inputs: ExecutableDesired): Promise<{ id: string; outs: ExecutableState }> {
  const engine = backend();
  const { adopted: _adopted, retired: _retired, ...observed } = await reseat(engine, inputs, { holder: lockHolder("pulumi") });
  const commits = await observeCommits(engine, observed.executableId, inputs.mountPath, observed.generation);
  return { id: observed.executableId, outs: { ...inputs, ...observed, ...commits } };
}

/** Finds the PE's live executable by identity; reports it gone (empty id) when none runs. */
export async function readExecutable(id: string, props: ExecutableState): Promise<{ id: string; props: ExecutableState }> {
  const engine = backend();
  const byId = await engine.inspectExecutable(id);
  let live = byId?.running ? byId : undefined;
  if (!live) {
    const running = (await engine.listExecutables(props.peId)).filter((e) => e.running).sort((a, b) => b.generation - a.generation)[0];
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
      ...(await observeCommits(engine, live.id, props.mountPath, live.generation)),
    },
  };
}

export async function updateExecutable(olds: ExecutableState, news: ExecutableDesired): Promise<{ outs: ExecutableState }> {
  if (olds.commitIntervalMs !== news.commitIntervalMs || JSON.stringify(olds.failureBackoff) !== JSON.stringify(news.failureBackoff)) {
    await applyControl(backend(), olds.executableId, news);
  }
  const kept = Object.fromEntries(OBSERVATION_FIELDS.map((field) => [field, olds[field]])) as unknown as ExecutableObservation;
  return { outs: { ...news, ...kept } };
}

export async function deleteExecutable(props: ExecutableState): Promise<void> {
  await retire(backend(), props, lockHolder("pulumi"));
}

export interface VolumeState extends VolumeFields {
  createdAt?: string;
  adopted: boolean;
}

export function diffVolume(olds: VolumeState, news: VolumeFields) {
  return planVolume(olds, news);
}

/** Creates the state volume, or adopts it when it already exists for this PE (kept by an earlier destroy). */
export async function createVolume(inputs: VolumeFields): Promise<{ id: string; outs: VolumeState }> {
  const engine = backend();
  const existing = await engine.inspectVolume(inputs.name);
  if (existing) {
    if (existing.peId !== inputs.peId) {
      throw new Error(
        `reseat: volume "${inputs.name}" already exists and belongs to ${existing.peId ? `PE "${existing.peId}"` : "no reseat PE"}; ` +
          `refusing to bind it to PE "${inputs.peId}". Choose another volume.name or remove that volume.`,
      );
    }
    if (existing.driver !== inputs.driver) {
      throw new Error(`reseat: volume "${inputs.name}" exists with driver "${existing.driver}", not "${inputs.driver}" (volume.driver)`);
    }
    return { id: existing.name, outs: { ...inputs, createdAt: existing.createdAt, adopted: true } };
  }
  const created = await engine.createVolume(inputs.name, inputs.driver, inputs.peId);
  return { id: created.name, outs: { ...inputs, createdAt: created.createdAt, adopted: false } };
}

export async function readVolume(id: string, props: VolumeState): Promise<{ id: string; props: VolumeState }> {
  const found = await backend().inspectVolume(id);
  return found ? { id, props: { ...props, driver: found.driver } } : { id: "", props };
}

export async function deleteVolume(id: string): Promise<void> {
  const engine = backend();
  const holders = await engine.runningOnVolume(id);
  if (holders.length) {
    throw new Error(`reseat: volume "${id}" is still mounted by ${holders.map((h) => h.name).join(", ")}; not deleting it`);
  }
  await engine.removeVolume(id);
}
