// `reseat status`: what runs on an engine, per PE, read fresh from the engine and the state volumes.
import { Backend, ObservedExecutable } from "../backend/backend";
import { openBackend } from "../backend/open";
import { commitOutputs, CommitOutputs, restoreFailure } from "../plan/commitStatus";
import { CONTROLLER_LEASE, ControllerStatus, readControllerStatus } from "./watch";
import { NO_REVERT, RecordCorruptError, type RevertRecord } from "@reseat/state/contract";
import { peLockName } from "../replacement/reseat";

export interface PeStatus extends Omit<CommitOutputs, "commitStatusAt"> {
  peId: string;
  generation: number | null;
  executable: string | null;
  state: string;
  volume: string | null;
  restarts: number;
  controller: ControllerStatus["state"] | null;
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

export async function gatherStatus(backend: Backend = openBackend(undefined)): Promise<PeStatus[]> {
  const executables = await backend.listExecutables();
  const volumes = await backend.listStateVolumes();
  const peIds = new Set([...executables.map((e) => e.peId), ...volumes.map((v) => v.peId ?? "").filter(Boolean)]);
  const rows: PeStatus[] = [];
  for (const peId of [...peIds].sort()) {
    const mine = executables.filter((e) => e.peId === peId).sort((a, b) => b.generation - a.generation);
    const current: ObservedExecutable | undefined = mine.find((e) => e.running) ?? mine[0];
    const volume = current?.volumeName ?? volumes.find((v) => v.peId === peId)?.name ?? null;
    // The workload rewrites its status all the time: one caught mid-write reads as none, not as an error.
    const workload = volume ? await backend.readWorkloadStatus(volume).catch(() => undefined) : undefined;
    const recordErrors: string[] = [];
    const parsedController = volume ? await readControllerStatus(backend, volume) : {};
    if (parsedController.corrupt) recordErrors.push(`controller record: ${parsedController.corrupt}`);
    const controller = parsedController.status;
    const revert = volume ? await readRevert(backend, volume, recordErrors) : NO_REVERT;
    const lockHolder = await backend.readLease(peLockName(peId)).then(
      (lease) => lease?.holder || null,
      (error: Error) => (recordErrors.push(`lock lease ${peLockName(peId)}: ${error.message}`), null),
    );
    const { commitStatusAt: _at, ...commits } = commitOutputs(workload, current?.generation ?? -1, new Date());
    const restoreFailed = restoreFailure(workload, current?.generation ?? workload?.generation ?? -1);
    rows.push({
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
    });
  }
  return rows;
}

/** The revert record; a corrupt one is reported for this PE and read as no revert. */
async function readRevert(backend: Backend, volume: string, recordErrors: string[]): Promise<RevertRecord> {
  try {
    return (await backend.readRevert(volume)) ?? NO_REVERT;
  } catch (error) {
    if (error instanceof RecordCorruptError) recordErrors.push(`revert record: ${error.message}`);
    return NO_REVERT;
  }
}

/** Group members are named <group>-<ordinal>. */
function groupOf(peId: string): string | null {
  const match = /^(.+)-(\d+)$/.exec(peId);
  return match ? match[1]! : null;
}

export function formatStatusTable(rows: PeStatus[]): string {
  const header = ["PE", "GEN", "STATE", "EXECUTABLE", "VOLUME", "LAST COMMIT", "LAG", "RESUMED", "RESTARTS"];
  const lines = rows.map((r) => [
    r.peId,
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
  return [...table, ...(reasons.length ? ["", ...reasons] : [])].join("\n");
}
