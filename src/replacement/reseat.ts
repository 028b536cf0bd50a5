// The one replacement routine. The dynamic provider (create), the failure controller and group
// rollouts all call reseat(): it reads the engine fresh and converges the PE to exactly one running
// executable with the desired spec, bound to the kept state volume, one generation newer. It talks
// to the engine only through the Backend seam, so it runs unchanged on Docker, the fake and Kubernetes.
import { Backend, ExecutableDesired, FileOwner, ObservedExecutable, STORE_PASSWORD_FILE, VolumeInfo, executableName } from "../backend/backend";
import { specHash } from "../plan/executablePlan";
import { faultPoint } from "./faults";
import { HeldLease, LeaseLostError, withLease } from "../lease/lease";
import { PostgresStore } from "@reseat/state";
import { DEFAULT_STORE_VOLUME } from "../schema/processingElement";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface ReseatResult {
  executableId: string;
  executableName: string;
  generation: number;
  host: string;
  /** When this executable generation was created (ISO). */
  replacedAt: string;
  /** When it was seen ready (ISO). */
  readyAt: string;
  /** True when a running executable with the desired spec was found and kept (idempotent re-run). */
  adopted: boolean;
  /** Executables this call stopped or removed (leftovers of an earlier generation). */
  retired: string[];
  reverted: boolean;
}

export class ForeignExecutableError extends Error {
  constructor(volumeName: string, holders: { name: string; peId?: string }[]) {
    super(
      `reseat: state volume "${volumeName}" is mounted by running container(s) reseat does not own for this PE: ` +
        holders.map((h) => `${h.name}${h.peId ? ` (PE "${h.peId}")` : " (not managed by reseat)"}`).join(", ") +
        `. Refusing to start a second writer on it; stop those containers first.`,
    );
    this.name = "ForeignExecutableError";
  }
}

/** The state volume belongs to someone else: the single-writer rule refuses to share it. */
export class VolumeOwnedError extends Error {
  constructor(volumeName: string, owner: string, wanted: string) {
    super(
      `reseat: state volume "${volumeName}" belongs to ${owner}; refusing to bind it to ${wanted} ` +
        `(volume.name): a state volume has exactly one processing element. Choose another volume.name, or remove the volume if its data is no longer wanted.`,
    );
    this.name = "VolumeOwnedError";
  }
}

export const CONTROL_PATH = ".reseat/control.json";

export interface ReseatOptions {
  /** Who is replacing (shown to anyone who finds the PE locked): "host:pid:role". */
  holder: string;
  /**
   * Replace even a running executable with the desired spec (the controller, for an unhealthy one).
   * By default an identical running executable is adopted, which makes a re-run idempotent.
   */
  replaceRunning?: boolean;
  /**
   * Leave the volume's control file as it is (the controller: its spec comes from the executable's
   * record, which in-place updates since then have not changed; the control file has them).
   */
  keepControl?: boolean;
  /** Only act if the PE still needs it, judged fresh under the lock (the controller's re-check). */
  stillNeeded?: (observed: ObservedExecutable[]) => boolean;
  /**
   * Awaited with the next executable prepared, right before the serving one is told to stop: a rollout
   * prepares a member while the one before it is still in its gap, and opens this gate when that one is
   * ready. A rejection ends the call before anything stopped: the prepared executable is removed, the
   * old one keeps serving, and the rejection is rethrown.
   */
  beforeGap?: () => Promise<void>;
  /** Called once the new executable is ready (before the old one is removed): opens the next gate. */
  onReady?: () => void;
}

/**
 * The PE lock's lease: renewed every third of it while held, so it only bounds how long a crashed
 * holder (a killed `pulumi up`) keeps others waiting.
 */
export const PE_LEASE_MS = 10_000;

/** The PE lock's lease name. */
export function peLockName(peId: string): string {
  return `pe-${peId}`;
}

/** Runs `work` holding the PE's lock (a renewed lease). */
export async function withPeLock<T>(backend: Backend, desired: ExecutableDesired, holder: string, work: (lock: HeldLease) => Promise<T>): Promise<T> {
  const leaseMs = PE_LEASE_MS;
  // Wait as long as a holder could legitimately work (stop grace + readiness), plus slack.
  const waitMs = desired.stop.graceSeconds * 1000 + (desired.readiness?.timeout ?? 60_000) + 60_000;
  return withLease(backend, peLockName(desired.peId), holder, { leaseMs, waitMs }, work);
}

/**
 * Converges a PE to one running executable with the desired spec. Returns undefined when
 * options.stillNeeded said, under the lock, that nothing is to be done.
 */
export async function reseat(backend: Backend, desired: ExecutableDesired, options: ReseatOptions): Promise<ReseatResult>;
export async function reseat(
  backend: Backend,
  desired: ExecutableDesired,
  options: ReseatOptions & { stillNeeded: (observed: ObservedExecutable[]) => boolean },
): Promise<ReseatResult | undefined>;
export async function reseat(backend: Backend, desired: ExecutableDesired, options: ReseatOptions): Promise<ReseatResult | undefined> {
  return withPeLock(backend, desired, options.holder, (lock) => converge(backend, desired, options, lock));
}

/** The single-writer rule at the volume: it must exist and belong to this PE (and owner, when known). */
export async function assertVolumeOwned(backend: Backend, desired: Pick<ExecutableDesired, "volumeName" | "peId" | "owner">): Promise<VolumeInfo> {
  const volume = await backend.inspectVolume(desired.volumeName);
  if (!volume) {
    throw new Error(`reseat: state volume "${desired.volumeName}" of PE "${desired.peId}" does not exist; run \`pulumi up\` (it recreates the volume and restores from the last commit)`);
  }
  checkOwner(volume, desired);
  return volume;
}

export function checkOwner(volume: VolumeInfo, wanted: { peId: string; owner?: string; volumeName?: string }): void {
  const mine = wanted.owner ?? `PE "${wanted.peId}"`;
  if (volume.peId !== undefined && volume.peId !== wanted.peId) {
    throw new VolumeOwnedError(volume.name, volume.owner ?? `PE "${volume.peId}"`, mine);
  }
  if (volume.peId === undefined) throw new VolumeOwnedError(volume.name, "no reseat processing element (it was not made by reseat)", mine);
  if (volume.owner && wanted.owner && volume.owner !== wanted.owner) throw new VolumeOwnedError(volume.name, volume.owner, mine);
}

async function converge(backend: Backend, desired: ExecutableDesired, options: ReseatOptions, lock: HeldLease): Promise<ReseatResult | undefined> {
  const hash = specHash(desired);
  const retired: string[] = [];
  const retire = async (e: ObservedExecutable) => {
    lock.assertHeld();
    if (e.running) await backend.stop(e.id, desired.stop);
    await backend.remove(e.id);
    retired.push(e.name);
  };

  // 1. Nobody else may write to this volume: it is ours, and no foreign container mounts it.
  await assertVolumeOwned(backend, desired);
  const holders = (await backend.runningOnVolume(desired.volumeName)).filter((h) => h.peId !== desired.peId);
  if (holders.length) throw new ForeignExecutableError(desired.volumeName, holders);

  // 2. Observe this PE's executables: adopt an identical running one (an interrupted run, or a
  //    re-run), otherwise find the one serving now; leftovers that do not run go.
  const observed = ownExecutables(await backend.listExecutables(desired.peId), desired).sort(byGenerationDesc);
  if (options.stillNeeded && !options.stillNeeded(observed)) return undefined;
  const adoptable = options.replaceRunning ? undefined : await findAdoptable(backend, observed, hash, desired.declaredBy);
  if (adoptable) {
    for (const e of observed) if (e !== adoptable) await retire(e);
    await backend.waitReady(adoptable.id, desired);
    const now = new Date().toISOString();
    const host = await hostOf(backend, adoptable.id);
    return { executableId: adoptable.id, executableName: adoptable.name, generation: adoptable.generation, host, replacedAt: adoptable.startedAt ?? now, readyAt: now, adopted: true, retired, reverted: false };
  }
  const [serving, ...extra] = observed.filter((e) => e.running);
  // Never more than one runs; should a second ever be found, it goes before anything else happens.
  for (const e of extra) await retire(e);
  // What to revert to if the new executable fails: the one serving, else the newest that ran.
  const previous = serving ?? observed.find((e) => e.specHash !== hash && e.state !== "created");
  const previousDesired = previous ? await backend.desiredOf(previous.id) : undefined;
  for (const e of observed) if (!e.running && e !== previous) await retire(e);

  // 3. Prepare the next generation while the old one still serves: resolved, created bound to the kept
  //    volume, not started. Its generation (the fencing token) is fixed now; it is recorded beside the
  //    volume only after the old executable has stopped, so the old one's final commit is not fenced.
  const recorded = await backend.readGeneration(desired.volumeName);
  // A new (or lost and recreated) volume has no generation: continue from the one the store has
  // accepted, or the store would fence the new executable out as stale.
  const base = recorded?.generation ?? (observed.length ? 0 : await storeGeneration(backend, desired));
  const generation = Math.max(base, ...observed.map((e) => e.generation)) + 1;
  // Everything reseat writes for the workload belongs to the workload's user (a non-root workload must
  // write into its volume and read its password file): the spec's runAsUser, else the image's USER.
  const owner = await workloadOwner(backend, desired);
  const previousControl = await backend.readVolumeFile(desired.volumeName, CONTROL_PATH);
  const keepControl = options.keepControl && previousControl !== undefined;
  if (!keepControl) await backend.writeVolumeFiles(desired.volumeName, { [CONTROL_PATH]: controlFile(desired) }, { owner });
  // The controller re-creates from a record that carries no password: the file from before stays.
  if (desired.store.kind === "postgres" && desired.store.password) {
    await backend.writeVolumeFiles(desired.volumeName, { [STORE_PASSWORD_FILE]: desired.store.password }, { mode: 0o600, owner });
  }
  if (owner && desired.store.kind === "directory") await giveStoreFolder(backend, desired, owner);
  const name = executableName(desired.peId, generation);
  lock.assertHeld();
  const id = await backend.prepare(desired, { name, generation, specHash: hash });
  await faultPoint("after-prepare");

  if (options.beforeGap) {
    try {
      await options.beforeGap();
    } catch (error) {
      await backend.remove(id).catch(() => undefined);
      throw error;
    }
  }

  // 4. The gap: stop the old one gracefully (its final commit) → record the generation → start → ready.
  const replacedAt = new Date().toISOString();
  let readyAt = replacedAt;
  let oldStopped = !serving;
  try {
    if (serving) {
      lock.assertHeld();
      await backend.stop(serving.id, desired.stop);
      oldStopped = true;
      await faultPoint("after-stop");
    }
    // Only now, with the old executable stopped: the volume's root (and, when it changes hands, all of it).
    if (owner) await backend.writeVolumeFiles(desired.volumeName, { "./": "", ".reseat/": "" }, { owner });
    await backend.recordGeneration({ peId: desired.peId, generation, volume: desired.volumeName, updatedAt: replacedAt }, owner);
    await lock.confirm();
    await backend.start(id);
    await faultPoint("after-start");
    await backend.waitReady(id, desired);
    readyAt = new Date().toISOString(); // the gap ends here; what follows happens while the new one serves
    options.onReady?.();
  } catch (error) {
    const failure = error as Error;
    const logs = await backend.logsTail(id, 20).catch(() => "(logs unavailable)");
    // Nothing half-made: the failed executable goes; the volume, its data and its generation stay.
    await backend.stop(id, desired.stop).catch(() => undefined);
    await backend.remove(id).catch(() => undefined);
    // Failed before the old one was told to stop: it still serves; nothing to revert.
    if (!oldStopped) throw failure;
    if (error instanceof LeaseLostError || !previous || !previousDesired || desired.onFailedReplacement === "leave-stopped") {
      if (previous) await retire(previous).catch(() => undefined);
      throw failure;
    }
    throw await revert(backend, lock, { desired, previous, previousDesired, previousControl, failedName: name, failedHash: hash, generation, failure, logs });
  }
  await faultPoint("after-ready");
  // 5. Out of the gap: the old executable (stopped) goes, and a past revert is superseded.
  if (previous) await retire(previous);
  await backend.writeVolumeFiles(desired.volumeName, { [REVERT_PATH]: JSON.stringify(NO_REVERT) }, { owner }).catch(() => undefined);
  return { executableId: id, executableName: name, generation, host: await hostOf(backend, id), replacedAt, readyAt, adopted: false, retired, reverted: false };
}

/**
 * A running executable that already is what `desired` asks for: the same spec, made for the same
 * Pulumi resource. One made for another resource (a forced replacement's predecessor) is not adopted:
 * the successor gets an executable of its own, so the predecessor's delete cannot take it down.
 */
async function findAdoptable(backend: Backend, observed: ObservedExecutable[], hash: string, declaredBy: string | undefined): Promise<ObservedExecutable | undefined> {
  for (const e of observed) {
    if (e.running && e.specHash === hash && (await backend.desiredOf(e.id))?.declaredBy === declaredBy) return e;
  }
  return undefined;
}

/** Where an executable runs: its own host on a multi-host engine (a pod's node), else the engine's. */
async function hostOf(backend: Backend, id: string): Promise<string> {
  return (await backend.inspectExecutable(id))?.host ?? (await backend.identity()).name;
}

interface RevertContext {
  desired: ExecutableDesired;
  previous: ObservedExecutable;
  previousDesired: ExecutableDesired;
  previousControl: string | undefined;
  failedName: string;
  failedHash: string;
  generation: number;
  failure: Error;
  logs: string;
}

/**
 * The new executable did not become ready: serve the previous spec again on the same volume, as the
 * next generation (a fresh executable: the failed one may have claimed its generation in the store,
 * which fences the old executable's token out for good). Returns the error the caller throws.
 */
async function revert(backend: Backend, lock: HeldLease, ctx: RevertContext): Promise<Error> {
  const generation = ctx.generation + 1;
  const name = executableName(ctx.desired.peId, generation);
  const revertedAt = new Date().toISOString();
  let readyAt = revertedAt;
  try {
    // The volume goes back to the previous spec's user, should the failed one have been another.
    const owner = await workloadOwner(backend, ctx.previousDesired);
    if (ctx.previousControl !== undefined) await backend.writeVolumeFiles(ctx.desired.volumeName, { [CONTROL_PATH]: ctx.previousControl }, { owner });
    const id = await backend.prepare(ctx.previousDesired, { name, generation, specHash: ctx.previous.specHash });
    if (owner) await backend.writeVolumeFiles(ctx.desired.volumeName, { "./": "", ".reseat/": "" }, { owner });
    await backend.recordGeneration({ peId: ctx.desired.peId, generation, volume: ctx.desired.volumeName, updatedAt: revertedAt }, owner);
    await lock.confirm();
    await backend.start(id);
    await backend.waitReady(id, ctx.previousDesired);
    readyAt = new Date().toISOString();
    lock.assertHeld();
    await backend.remove(ctx.previous.id);
  } catch (revertError) {
    return new Error(
      `reseat: PE "${ctx.desired.peId}": the new executable ${ctx.failedName} failed (${firstLine(ctx.failure)}) and reverting to the previous spec failed too (${firstLine(revertError as Error)}); ` +
        `the PE has no running executable. Its volume and data are kept. Last log lines of ${ctx.failedName}:\n${ctx.logs}`,
    );
  }
  const record: RevertRecord = { reverted: true, at: revertedAt, failedExecutable: ctx.failedName, failedSpecHash: ctx.failedHash, servingGeneration: generation, servingExecutable: name, readyAt, error: firstLine(ctx.failure) };
  await backend.writeVolumeFiles(ctx.desired.volumeName, { [REVERT_PATH]: JSON.stringify(record) }, { owner: await workloadOwner(backend, ctx.previousDesired).catch(() => undefined) }).catch(() => undefined);
  return new ReplacementRevertedError(ctx.desired.peId, record, ctx.logs);
}

function firstLine(error: Error): string {
  return error.message.split("\n")[0] ?? error.message;
}

/** Where the last revert is recorded beside the volume (status and outputs read it). */
export const REVERT_PATH = ".reseat/revert.json";

export interface RevertRecord {
  reverted: boolean;
  at?: string;
  failedExecutable?: string;
  failedSpecHash?: string;
  servingGeneration?: number;
  servingExecutable?: string;
  /** When the previous spec was ready again. */
  readyAt?: string;
  error?: string;
}

export const NO_REVERT: RevertRecord = { reverted: false };

/** The new executable failed and the PE serves its previous spec again. */
export class ReplacementRevertedError extends Error {
  constructor(
    readonly peId: string,
    readonly record: RevertRecord,
    readonly logs: string,
  ) {
    super(
      `reseat: PE "${peId}" was reverted: the new executable ${record.failedExecutable} (spec ${record.failedSpecHash}) did not become ready (${record.error}); ` +
        `the previous spec serves again as ${record.servingExecutable} (generation ${record.servingGeneration}) on the same volume. Fix the spec and run up again. ` +
        `Last log lines of ${record.failedExecutable}:\n${logs}`,
    );
    this.name = "ReplacementRevertedError";
  }
}

/** Which of a PE's executables `retire` takes. */
export interface RetireScope {
  /**
   * Only those made for the same Pulumi resource as `desired` (equal `declaredBy`; for a resource
   * recorded before 0.4, those that carry none): deleting a replaced resource never touches what its
   * successor runs, whatever made Pulumi replace it.
   */
  sameDeclarer?: boolean;
  /** Only those of this spec (resources recorded before 0.4, whose executables carry no declarer). */
  specHash?: string;
}

/**
 * Stops executables of a PE gracefully and removes them (only them: never the volume). Found by the
 * PE's identity, not only by the id Pulumi recorded: a controller may have reseated it since, on the
 * same resource's behalf.
 */
export async function retire(backend: Backend, desired: ExecutableDesired, holder: string, only: RetireScope = {}): Promise<string[]> {
  return withPeLock(backend, desired, holder, async (lock) => {
    const observed: ObservedExecutable[] = [];
    for (const e of ownExecutables(await backend.listExecutables(desired.peId), desired)) {
      if (only.specHash && e.specHash !== only.specHash) continue;
      if (only.sameDeclarer && (await backend.desiredOf(e.id))?.declaredBy !== desired.declaredBy) continue;
      observed.push(e);
    }
    for (const executable of observed) {
      lock.assertHeld();
      if (executable.running) {
        await backend.stop(executable.id, desired.stop);
        await faultPoint("after-stop");
      }
      await backend.remove(executable.id);
    }
    return observed.map((e) => e.name);
  });
}

/**
 * The settings that change without a new executable: the workload reads the commit interval from
 * here, the controller the failure backoff (container labels cannot change after creation).
 */
export function controlFile(desired: ExecutableDesired): string {
  return JSON.stringify({ commitIntervalMs: desired.commitIntervalMs, failureBackoff: desired.failureBackoff });
}

/** Rewrites the live control file (commit interval) of a running executable: an in-place update. */
export async function applyControl(backend: Backend, desired: ExecutableDesired): Promise<void> {
  await backend.writeVolumeFiles(desired.volumeName, { [CONTROL_PATH]: controlFile(desired) }, { owner: await workloadOwner(backend, desired) });
}

/** Who the workload runs as, when not root: the spec's runAsUser/runAsGroup, else the image's USER. */
export async function workloadOwner(backend: Backend, desired: Pick<ExecutableDesired, "user" | "imageId">): Promise<FileOwner | undefined> {
  const owner = desired.user ?? (await backend.imageUser?.(desired.imageId));
  return owner && (owner.uid !== 0 || owner.gid !== 0) ? owner : undefined;
}

/**
 * The PE's folder in a directory store, where the workload writes its commits. A store volume is shared by
 * PEs running as different users: its root is sticky and world-writable (as /tmp), so that each can make
 * its own folder (the Terraform flavour's workloads do) and none can remove another's.
 */
async function giveStoreFolder(backend: Backend, desired: ExecutableDesired, owner: FileOwner): Promise<void> {
  if (desired.store.kind !== "directory") return;
  const store = desired.store.hostPath ?? desired.store.volume ?? DEFAULT_STORE_VOLUME;
  if (!desired.store.hostPath) await backend.writeVolumeFiles(store, { "./": "" }, { rootMode: 0o1777 });
  await backend.writeVolumeFiles(store, { [`${encodeURIComponent(desired.peId)}/`]: "" }, { owner });
}

/** The newest generation the PE's persistent store has accepted (0 when none or no store). */
export async function storeGeneration(backend: Backend, desired: ExecutableDesired): Promise<number> {
  switch (desired.store.kind) {
    case "none":
      return 0;
    case "directory": {
      const text = await backend.readVolumeFile(desired.store.hostPath ?? desired.store.volume ?? DEFAULT_STORE_VOLUME, `${encodeURIComponent(desired.peId)}/fence.json`);
      return text ? Number((JSON.parse(text) as { generation?: number }).generation ?? 0) : 0;
    }
    case "postgres":
      return postgresGeneration(desired.store, desired.peId);
  }
}

/**
 * A PE id names one PE per engine: executables of the same id made for another owner (another stack
 * or program) are refused, never adopted or retired.
 */
function ownExecutables(observed: ObservedExecutable[], desired: Pick<ExecutableDesired, "peId" | "owner">): ObservedExecutable[] {
  const foreign = observed.filter((e) => e.owner && desired.owner && e.owner !== desired.owner);
  if (foreign.length) {
    throw new Error(
      `reseat: processing element id "${desired.peId}" (peId) is already in use on this engine by ${foreign[0]!.owner} (${foreign.map((e) => e.name).join(", ")}); ` +
        `a peId names one PE per engine: choose another peId for ${desired.owner}`,
    );
  }
  return observed;
}

function byGenerationDesc(a: ObservedExecutable, b: ObservedExecutable): number {
  return b.generation - a.generation;
}

/**
 * Asks the PE's PostgreSQL store which generation it last accepted. Only needed when the volume is new
 * or was lost; the password goes through a private temp file (the store reads passwords from files).
 */
async function postgresGeneration(store: Extract<ExecutableDesired["store"], { kind: "postgres" }>, peId: string): Promise<number> {
  if (!store.password) {
    throw new Error(`reseat: the state volume of PE "${peId}" has no generation and the PostgreSQL password is not at hand to ask the store; run \`reseat up\``);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-pg-"));
  const passwordFile = path.join(dir, "password");
  fs.writeFileSync(passwordFile, store.password, { mode: 0o600 });
  const client = new PostgresStore(peId, { host: store.host, port: store.port, database: store.database, user: store.user, table: store.table, passwordFile });
  try {
    return await client.newestGeneration();
  } finally {
    await client.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
