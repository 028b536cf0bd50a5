// `reseat status`: what runs on an engine, per PE, read fresh from the engine and the state volumes.
import { Backend, ObservedExecutable } from "../backend/backend";
import { openBackend } from "../backend/open";
import { commitOutputs, CommitOutputs, parseWorkloadStatus, restoreFailure } from "../plan/commitStatus";
import { CONTROLLER_LEASE, CONTROLLER_STATUS_PATH, ControllerStatus } from "./watch";
import { NO_REVERT, REVERT_PATH, RevertRecord } from "../replacement/reseat";

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
}

/** Who watches the engine: the controller's presence lease, as last renewed. */
export interface ControllerPresence {
  watching: boolean;
  holder: string | null;
  /** The holder's clock at its last renewal (informational). */
  renewedAt: string | null;
}

export async function controllerPresence(backend: Backend = openBackend(undefined)): Promise<ControllerPresence> {
  const lease = await backend.readLease(CONTROLLER_LEASE);
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
    const read = async (file: string) => (volume ? backend.readVolumeFile(volume, file).catch(() => undefined) : undefined);
    const workload = parseWorkloadStatus(await read(".reseat/status.json"));
    const controllerText = await read(CONTROLLER_STATUS_PATH);
    const revert = parseRevert(await read(REVERT_PATH));
    const controller = controllerText ? (JSON.parse(controllerText) as ControllerStatus) : undefined;
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
    });
  }
  return rows;
}

function parseRevert(text: string | undefined): RevertRecord {
  try {
    return text ? (JSON.parse(text) as RevertRecord) : NO_REVERT;
  } catch {
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
  const table = [header, ...lines].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  const reasons = rows.flatMap((r) => (r.restoreFailed ? [`${r.peId}: restore failed, refusing to start empty:`, ...r.restoreFailed.map((reason) => `  ${reason}`)] : []));
  return [...table, ...(reasons.length ? ["", ...reasons] : [])].join("\n");
}
