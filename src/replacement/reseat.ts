// The one replacement routine. The dynamic provider (create), the failure controller and group
// rollouts all call reseat(): it reads the engine fresh and converges the PE to exactly one running
// executable with the desired spec, bound to the kept state volume, one generation newer. It talks
// to the engine only through the Backend seam, so it runs unchanged on Docker, the fake and Kubernetes.
import { Backend, ExecutableDesired, ObservedExecutable, STORE_PASSWORD_FILE, VolumeInfo, executableName } from "../backend/backend";
import { specHash } from "../plan/executablePlan";
import { faultPoint } from "./faults";
import { HeldLease, withLease } from "../lease/lease";
import { PostgresStore } from "../state/store/postgresStore";
import { DEFAULT_STORE_VOLUME } from "../spec/processingElement";
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

  // 1. Nobody else may write to this volume: it is ours, and no foreign container mounts it.
  await assertVolumeOwned(backend, desired);
  const holders = (await backend.runningOnVolume(desired.volumeName)).filter((h) => h.peId !== desired.peId);
  if (holders.length) throw new ForeignExecutableError(desired.volumeName, holders);

  // 2. Observe this PE's executables: adopt an identical running one, retire everything else.
  const observed = ownExecutables(await backend.listExecutables(desired.peId), desired);
  if (options.stillNeeded && !options.stillNeeded(observed)) return undefined;
  const adoptable = options.replaceRunning ? undefined : observed.filter((e) => e.running && e.specHash === hash).sort(byGenerationDesc)[0];
  for (const executable of observed) {
    if (executable === adoptable) continue;
    lock.assertHeld();
    if (executable.running) await backend.stop(executable.id, desired.stop);
    await backend.remove(executable.id);
    retired.push(executable.name);
  }
  const host = (await backend.identity()).name;
  if (adoptable) {
    await backend.waitReady(adoptable.id, desired);
    const now = new Date().toISOString();
    return { executableId: adoptable.id, executableName: adoptable.name, generation: adoptable.generation, host, replacedAt: adoptable.startedAt ?? now, readyAt: now, adopted: true, retired };
  }

  // 3. The next generation, recorded beside the volume before anything starts (it survives any
  //    crash of the caller), and handed to the executable at creation as its fencing token.
  const previous = await backend.readGeneration(desired.volumeName);
  // A new (or lost and recreated) volume has no generation: continue from the one the store has
  // accepted, or the store would fence the new executable out as stale.
  const generation = (previous?.generation ?? (await storeGeneration(backend, desired))) + 1;
  const replacedAt = new Date().toISOString();
  lock.assertHeld();
  await backend.recordGeneration({ peId: desired.peId, generation, volume: desired.volumeName, updatedAt: replacedAt });
  const keepControl = options.keepControl && (await backend.readVolumeFile(desired.volumeName, CONTROL_PATH)) !== undefined;
  if (!keepControl) await backend.writeVolumeFiles(desired.volumeName, { [CONTROL_PATH]: controlFile(desired) });
  // The controller re-creates from a record that carries no password: the file from before stays.
  if (desired.store.kind === "postgres" && desired.store.password) {
    await backend.writeVolumeFiles(desired.volumeName, { [STORE_PASSWORD_FILE]: desired.store.password }, { mode: 0o600 });
  }
  const name = executableName(desired.peId, generation);
  const id = await backend.prepare(desired, { name, generation, specHash: hash });
  await faultPoint("after-create");
  try {
    await lock.confirm();
    await backend.start(id);
    await faultPoint("before-ready");
    await backend.waitReady(id, desired);
    const readyAt = new Date().toISOString();
    return { executableId: id, executableName: name, generation, host, replacedAt, readyAt, adopted: false, retired };
  } catch (error) {
    // A failed start leaves nothing half-made: the volume and its generation stay, the executable goes.
    await backend.remove(id).catch(() => undefined);
    throw error;
  }
}

/**
 * Stops a PE's executables gracefully and removes them (only them: never the volume). Found by the
 * PE's identity, not only by the id Pulumi recorded: a controller may have reseated it since.
 */
export async function retire(backend: Backend, desired: ExecutableDesired, holder: string): Promise<string[]> {
  return withPeLock(backend, desired, holder, async (lock) => {
    const observed = ownExecutables(await backend.listExecutables(desired.peId), desired);
    for (const executable of observed) {
      lock.assertHeld();
      if (executable.running) {
        await backend.stop(executable.id, desired.stop);
        await faultPoint("after-stop");
      }
      await backend.remove(executable.id);
    }
    await faultPoint("after-remove");
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
  await backend.writeVolumeFiles(desired.volumeName, { [CONTROL_PATH]: controlFile(desired) });
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
