// `reseat status`: what runs on an engine, per PE, read fresh from the engine and the state volumes.
import { Backend, ObservedExecutable, PeStatusRecords } from "../backend/backend";
import { openBackend } from "../backend/open";
import { commitOutputs, CommitOutputs, restoreFailure } from "../plan/commitStatus";
import { CONTROLLER_LEASE, ControllerStatus, readControllerStatus } from "./watch";
import { NO_REVERT, RecordCorruptError } from "@reseat/state/contract";
import { peLockName } from "../replacement/reseat";
import { mapInLanes } from "../util/lanes";

export interface PeStatus extends Omit<CommitOutputs, "commitStatusAt"> {
  peId: string;
  generation: number | null;
  executable: string | null;
  state: string;
  volume: string | null;
  restarts: number;
  controller: ControllerStatus["state"] | null;
  /**
   * The fleet or group the PE is a member of: "<name>" of its id "<name>-<ordinal>" (the engine records no
   * more than the id; a PE named so by hand reads as a member too). Null for other ids.
   */
  group: string | null;
  /** The last replacement failed and the previous spec serves again. */
  reverted: boolean;
  failedSpecHash: string | null;
  /** Set when the state is "restore-failed": why no commit of the store could be restored (one per commit). */
  restoreFailed: string[] | null;
  /** Who holds the PE's lock now (a replacement in progress), from its lease. */
  lockHolder: string | null;
  /** Records of this PE that could not be read (corrupt controller record, unreadable lock lease): reported here, the other PEs unaffected. */
  recordErrors: string[];
}

/** Who watches the engine: the controller's presence lease, as last renewed. */
export interface ControllerPresence {
  watching: boolean;
  holder: string | null;
  /** The holder's clock at its last renewal (informational). */
  renewedAt: string | null;
  /** Set when the presence lease could not be read (corrupt, or the engine failed the read). */
  error?: string;
}

export async function controllerPresence(backend: Backend = openBackend(undefined)): Promise<ControllerPresence> {
  let lease: Awaited<ReturnType<Backend["readLease"]>>;
  try {
    lease = await backend.readLease(CONTROLLER_LEASE);
  } catch (error) {
    return { watching: false, holder: null, renewedAt: null, error: `the controller's presence lease could not be read: ${(error as Error).message}` };
  }
  if (!lease) return { watching: false, holder: null, renewedAt: null };
  // Without waiting a whole lease we cannot prove the holder alive; a renewal far older than its
  // lease (by our clock, so only a hint across hosts) says it is gone.
  const age = lease.renewedAt ? Date.now() - Date.parse(lease.renewedAt) : 0;
  return { watching: age < 3 * lease.leaseMs, holder: lease.holder, renewedAt: lease.renewedAt || null };
}

/** How many PEs status reads at once: engine calls in flight, whatever the number of PEs. */
export const STATUS_LANES = 8;

/**
 * Every PE on the engine (fleet and group members among them), read fresh. The engine is listed a fixed
 * number of times whatever the number of PEs (executables, state volumes, and with readStatusRecords the
 * records in bulk); what is per PE (a record, its lock lease, its workload's status) is read `lanes` PEs at a time.
 */
export async function gatherStatus(backend: Backend = openBackend(undefined), options: { lanes?: number } = {}): Promise<PeStatus[]> {
  const lanes = options.lanes ?? STATUS_LANES;
  const executables = await backend.listExecutables();
  const volumes = await backend.listStateVolumes();
  const executablesOf = new Map<string, ObservedExecutable[]>();
  for (const e of executables) executablesOf.set(e.peId, [...(executablesOf.get(e.peId) ?? []), e]);
  const volumeOf = new Map<string, string>();
  for (const v of volumes) if (v.peId && !volumeOf.has(v.peId)) volumeOf.set(v.peId, v.name);
  const pes = [...new Set([...executablesOf.keys(), ...volumeOf.keys()])].sort(byMemberOrder).map((peId) => {
    const mine = (executablesOf.get(peId) ?? []).sort((a, b) => b.generation - a.generation);
    const current: ObservedExecutable | undefined = mine.find((e) => e.running) ?? mine[0];
    return { peId, current, volume: current?.volumeName || volumeOf.get(peId) || null };
  });
  const bulk = backend.readStatusRecords
    ? await backend.readStatusRecords(
        pes.flatMap((pe) => (pe.volume ? [pe.volume] : [])),
        { lanes },
      )
    : undefined;
  const now = new Date();
  return mapInLanes(pes, lanes, async ({ peId, current, volume }): Promise<PeStatus> => {
    const records: PeStatusRecords = volume ? (bulk ? (bulk.get(volume) ?? { corrupt: {} }) : await recordsOneByOne(backend, volume)) : { corrupt: {} };
    const recordErrors = Object.entries(records.corrupt).map(([what, message]) => `${what}: ${message}`);
    const lockHolder = await backend.readLease(peLockName(peId)).then(
      (lease) => lease?.holder || null,
      (error: Error) => (recordErrors.push(`lock lease ${peLockName(peId)}: ${error.message}`), null),
    );
    const { workload, controller } = records;
    const revert = records.revert ?? NO_REVERT;
    const { commitStatusAt: _at, ...commits } = commitOutputs(workload, current?.generation ?? -1, now);
    const restoreFailed = restoreFailure(workload, current?.generation ?? workload?.generation ?? -1);
    return {
      peId,
      generation: current?.generation ?? null,
      executable: current?.name ?? null,
      // The workload refused to start over a store none of whose commits verifies: say so, not just "exited".
      state: restoreFailed && !current?.running ? "restore-failed" : current ? current.state : "no executable",
      volume,
      ...commits,
      restarts: controller?.restarts ?? 0,
      controller: controller?.state ?? null,
      group: groupOf(peId),
      reverted: revert.reverted,
      failedSpecHash: revert.failedSpecHash ?? null,
      restoreFailed,
      lockHolder,
      recordErrors,
    };
  });
}

/**
 * One PE's records, one read after the other (the engine has no bulk read): a corrupt one is named for
 * this PE and read as none; the workload's status caught mid-write reads as none, not as an error.
 */
async function recordsOneByOne(backend: Backend, volume: string): Promise<PeStatusRecords> {
  const corrupt: PeStatusRecords["corrupt"] = {};
  const workload = await backend.readWorkloadStatus(volume).catch(() => undefined);
  const controller = await readControllerStatus(backend, volume);
  if (controller.corrupt) corrupt["controller record"] = controller.corrupt;
  const revert = await backend.readRevert(volume).catch((error: Error) => {
    if (error instanceof RecordCorruptError) corrupt["revert record"] = error.message;
    return undefined;
  });
  return { workload, controller: controller.status, revert, corrupt };
}

/** Group members are named <group>-<ordinal>. */
function groupOf(peId: string): string | null {
  const match = /^(.+)-(\d+)$/.exec(peId);
  return match ? match[1]! : null;
}

/** By id, a fleet's or group's members in ordinal order ("orders-2" before "orders-10"). */
function byMemberOrder(a: string, b: string): number {
  const member = (peId: string): [string, number] => {
    const match = /^(.+)-(\d+)$/.exec(peId);
    return match ? [match[1]!, Number(match[2])] : [peId, -1];
  };
  const [groupA, ordinalA] = member(a);
  const [groupB, ordinalB] = member(b);
  if (groupA !== groupB) return groupA < groupB ? -1 : 1;
  return ordinalA - ordinalB || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * One line per fleet or group of more than one member, for a table of hundreds of rows: how many run,
 * the generations they are at, and the largest commit lag (the member it is).
 */
export function groupSummaries(rows: PeStatus[]): string[] {
  const groups = new Map<string, PeStatus[]>();
  for (const row of rows) if (row.group) groups.set(row.group, [...(groups.get(row.group) ?? []), row]);
  return [...groups]
    .filter(([, members]) => members.length > 1)
    .map(([group, members]) => {
      const running = members.filter((m) => m.state === "running").length;
      const generations = members.map((m) => m.generation).filter((g): g is number => g !== null);
      const span = generations.length
        ? `generation ${Math.min(...generations)}${Math.max(...generations) > Math.min(...generations) ? `..${Math.max(...generations)}` : ""}`
        : "no generation";
      const lagging = members.filter((m) => m.commitLagMs !== null).sort((x, y) => y.commitLagMs! - x.commitLagMs!)[0];
      const lag = lagging ? `largest commit lag ${lagging.commitLagMs}ms (${lagging.peId})` : "no commit status";
      return `${group}: ${members.length} members, ${running} running, ${span}, ${lag}`;
    });
}

export function formatStatusTable(rows: PeStatus[]): string {
  const header = ["PE", "FLEET/GROUP", "GEN", "STATE", "EXECUTABLE", "VOLUME", "LAST COMMIT", "LAG", "RESUMED", "RESTARTS"];
  const lines = rows.map((r) => [
    r.peId,
    r.group ?? "-",
    String(r.generation ?? "-"),
    r.reverted ? `${r.state} (reverted: ${r.failedSpecHash} failed)` : r.controller === "failing" ? `${r.state} (failing)` : r.state,
    r.executable ?? "-",
    r.volume ?? "-",
    r.lastCommit ? `#${r.lastCommit.seq} ${r.lastCommit.at}` : "-",
    r.commitLagMs === null ? "-" : `${r.commitLagMs}ms`,
    r.resumedFrom ? `${r.resumedFrom}@${r.resumedSeq}` : "-",
    String(r.restarts),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const table = [header, ...lines].map((cols) =>
    cols
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
  const reasons = rows.flatMap((r) => [
    ...(r.restoreFailed ? [`${r.peId}: restore failed, refusing to start empty:`, ...r.restoreFailed.map((reason) => `  ${reason}`)] : []),
    ...r.recordErrors.map((error) => `${r.peId}: unreadable record: ${error}`),
  ]);
  const summaries = groupSummaries(rows);
  return [...table, ...(summaries.length ? ["", ...summaries] : []), ...(reasons.length ? ["", ...reasons] : [])].join("\n");
}
