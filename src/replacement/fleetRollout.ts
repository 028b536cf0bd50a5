// A fleet's rollout: every member through the one replacement routine (reseat), maxUnavailable
// chains at once, highest ordinal first, as planned by src/plan/rollout.ts. Level-triggered: a member
// already running its desired spec is kept (reseat adopts it), so a rollout that stopped half-way is
// finished by the next call. The first failure stops the rollout: members not begun keep what they run.
import type { Backend } from "../backend/backend";
import type { FleetMemberPlan } from "../plan/fleetPlan";
import type { RolloutPlan } from "../plan/rollout";
import { applyControl, checkOwner, reseat, ReseatResult } from "./reseat";

export type MemberOutcome =
  | { ordinal: number; kind: "done"; result: ReseatResult }
  /** Held back by partition and running: observed, not touched. */
  | { ordinal: number; kind: "held"; result: ReseatResult }
  | { ordinal: number; kind: "failed"; error: Error }
  /** Not begun: the rollout stopped at a failure first. */
  | { ordinal: number; kind: "not-begun" };

export interface FleetRolloutOptions {
  /** Lease holder name (see lease.ts). */
  holder: string;
}

/** Claims (or adopts) the member's state volume for its owner: the single-writer rule at the volume. */
async function claimMemberVolume(backend: Backend, member: FleetMemberPlan): Promise<void> {
  const volume = await backend.claimVolume(member.volume);
  checkOwner(volume, { peId: member.peId, owner: member.volume.owner });
  if (volume.driver !== member.volume.driver) {
    throw new Error(`reseat: volume "${member.volume.name}" exists with driver "${volume.driver}", not "${member.volume.driver}" (template.volume.driver)`);
  }
}

/** A held member's running executable, as reseat would report a kept one; undefined when none runs. */
async function observeHeld(backend: Backend, member: FleetMemberPlan): Promise<ReseatResult | undefined> {
  const running = (await backend.listExecutables(member.peId)).filter((e) => e.running && (!e.owner || e.owner === member.desired.owner)).sort((a, b) => b.generation - a.generation)[0];
  if (!running) return undefined;
  const at = running.startedAt ?? new Date().toISOString();
  return { executableId: running.id, executableName: running.name, generation: running.generation, host: running.host ?? (await backend.identity()).name, replacedAt: at, readyAt: at, adopted: true, retired: [], reverted: false };
}

async function rollMember(backend: Backend, member: FleetMemberPlan, options: FleetRolloutOptions): Promise<MemberOutcome> {
  await claimMemberVolume(backend, member);
  if (member.held) {
    const kept = await observeHeld(backend, member);
    if (kept) return { ordinal: member.ordinal, kind: "held", result: kept };
  }
  const result = await reseat(backend, member.desired, { holder: options.holder });
  // Kept as it runs: settings that change without a new executable go to its control file.
  if (result.adopted && member.controlChanged) await applyControl(backend, member.desired);
  return { ordinal: member.ordinal, kind: "done", result };
}

/**
 * Rolls the members (indexed by ordinal) along the plan's chains. Returns one outcome per member;
 * never throws for a member's failure (the caller reports it with what was done).
 */
export async function rollFleet(backend: Backend, plan: RolloutPlan, members: FleetMemberPlan[], options: FleetRolloutOptions): Promise<MemberOutcome[]> {
  const outcomes: MemberOutcome[] = [];
  let stopped = false;
  await Promise.all(
    plan.chains.map(async (chain) => {
      for (const ordinal of chain) {
        const member = members[ordinal]!;
        if (stopped) {
          outcomes[ordinal] = { ordinal, kind: "not-begun" };
          continue;
        }
        try {
          outcomes[ordinal] = await rollMember(backend, member, options);
        } catch (error) {
          stopped = true;
          outcomes[ordinal] = { ordinal, kind: "failed", error: error as Error };
        }
      }
    }),
  );
  return outcomes;
}

/** One line for a failed rollout: which member failed and why, what was rolled, what was left. */
export function describeFailedRollout(fleet: string, members: FleetMemberPlan[], outcomes: MemberOutcome[], order: number[]): string {
  const named = (kind: MemberOutcome["kind"]) => order.filter((o) => outcomes[o]?.kind === kind).map((o) => members[o]!.peId);
  const failed = order.map((o) => outcomes[o]).filter((o): o is Extract<MemberOutcome, { kind: "failed" }> => o?.kind === "failed");
  const lines = [`reseat: fleet "${fleet}": the rollout stopped at ${failed.map((f) => members[f.ordinal]!.peId).join(", ")}.`];
  for (const f of failed) lines.push(`  ${members[f.ordinal]!.peId}: ${f.error.message}`);
  const done = named("done");
  const notBegun = named("not-begun");
  if (done.length) lines.push(`  rolled (running the new spec): ${done.join(", ")}`);
  if (notBegun.length) lines.push(`  not begun (running what they ran before): ${notBegun.join(", ")}`);
  lines.push("  The next `up` rolls the members that are behind, from the first that failed.");
  return lines.join("\n");
}

/** Runs `work` on every item, at most `lanes` at a time; resolves when all have ended (first error rethrown). */
export async function inLanes<T>(items: T[], lanes: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await work(item).catch((error: unknown) => errors.push(error));
      }
    }),
  );
  if (errors.length) throw errors[0];
}
