// A fleet's rollout: every member through the one replacement routine (reseat), maxUnavailable
// chains at once, highest ordinal first, as planned by src/plan/rollout.ts. Level-triggered: a member
// already running its desired spec is kept (reseat adopts it), so a rollout that stopped half-way is
// finished by the next call. The first failure stops the rollout: members not begun keep what they run.
import type { Backend, VolumeClaim } from "../backend/backend";
import type { FleetMemberPlan } from "../plan/fleetPlan";
import type { RolloutPlan } from "../plan/rollout";
import { applyControl, checkOwner, reseat, ReseatResult } from "./reseat";

export type MemberOutcome =
  | { ordinal: number; kind: "done"; result: ReseatResult }
  /** Held back by partition and running: observed, not touched. */
  | { ordinal: number; kind: "held"; result: ReseatResult }
  | { ordinal: number; kind: "failed"; error: Error }
  /** Its volume's host cannot take a new executable (a node gone): left as it is, the rollout goes on. */
  | { ordinal: number; kind: "waiting"; reason: string }
  /** Not begun: the rollout stopped at a failure first. */
  | { ordinal: number; kind: "not-begun" };

export interface FleetRolloutOptions {
  /** Lease holder name (see lease.ts). */
  holder: string;
}

/**
 * Claims (or adopts) the member's state volume for its owner: the single-writer rule at the volume. On
 * Kubernetes the claim (and a directory store's claim) is made here, through the seam: kept on destroy
 * and scale-down, adopted with its data on scale-up.
 */
async function claimMemberVolume(backend: Backend, member: FleetMemberPlan): Promise<void> {
  const claims = [
    { claim: member.volume, make: (c: VolumeClaim) => backend.claimVolume(c) },
    ...(member.storeVolume && backend.claimStoreVolume ? [{ claim: member.storeVolume, make: backend.claimStoreVolume.bind(backend) }] : []),
  ];
  for (const { claim, make } of claims) {
    const volume = await make(claim);
    checkOwner(volume, { peId: member.peId, owner: claim.owner });
    // Kubernetes: "" asks for the cluster's default class, which the API server writes into the claim.
    if (claim.driver !== "" || backend.kind !== "kubernetes") {
      if (volume.driver !== claim.driver) {
        const field =
          backend.kind === "kubernetes"
            ? claim === member.volume
              ? "template.kubernetes.storageClassName"
              : "template.kubernetes.store.storageClassName"
            : "template.volume.driver";
        throw new Error(
          `reseat: volume "${claim.name}" exists with ${backend.kind === "kubernetes" ? "StorageClass" : "driver"} "${volume.driver}", not "${claim.driver}" (${field})`,
        );
      }
    }
  }
}

/** A held member's running executable, as reseat would report a kept one; undefined when none runs. */
async function observeHeld(backend: Backend, member: FleetMemberPlan): Promise<ReseatResult | undefined> {
  const running = (await backend.listExecutables(member.peId))
    .filter((e) => e.running && (!e.owner || e.owner === member.desired.owner))
    .sort((a, b) => b.generation - a.generation)[0];
  if (!running) return undefined;
  const at = running.startedAt ?? new Date().toISOString();
  return {
    executableId: running.id,
    executableName: running.name,
    generation: running.generation,
    host: running.host ?? (await backend.identity()).name,
    replacedAt: at,
    readyAt: at,
    adopted: true,
    retired: [],
    reverted: false,
  };
}

/** Thrown through a member's gate when the rollout has stopped: the member was not begun. */
class RolloutStopped extends Error {
  constructor() {
    super("the rollout stopped before this member");
  }
}

async function rollMember(backend: Backend, member: FleetMemberPlan, options: FleetRolloutOptions, gate: Gate): Promise<MemberOutcome> {
  await claimMemberVolume(backend, member);
  if (member.held) {
    const kept = await observeHeld(backend, member);
    if (kept) return { ordinal: member.ordinal, kind: "held", result: kept };
  }
  // Never moved to another host on an empty volume, never stopped where no successor can start: it waits.
  const unavailable = await backend.volumeHostUnavailable?.(member.volume.name);
  if (unavailable) return { ordinal: member.ordinal, kind: "waiting", reason: unavailable };
  const result = await reseat(backend, member.desired, { holder: options.holder, beforeGap: gate.wait, onReady: gate.ready });
  // Kept as it runs: settings that change without a new executable go to its control file.
  if (result.adopted && member.controlChanged) await applyControl(backend, member.desired);
  return { ordinal: member.ordinal, kind: "done", result };
}

/** A member's place in its chain: when it may stop its old executable, and how it says it is ready. */
interface Gate {
  /** Resolves when the member before it on the chain is ready; rejects when the rollout stopped. */
  wait: () => Promise<void>;
  /** This member's new executable is ready. */
  ready: () => void;
}

/**
 * Rolls the members (indexed by ordinal) along the plan's chains. Returns one outcome per member;
 * never throws for a member's failure (the caller reports it with what was done).
 *
 * Within a chain a member is prepared (lock, observation, its next executable created) while the one
 * before it is still in its gap, and stops its old executable only once that one is ready: at most
 * maxUnavailable members are ever down, and the hand-off between members is not spent preparing.
 */
export async function rollFleet(backend: Backend, plan: RolloutPlan, members: FleetMemberPlan[], options: FleetRolloutOptions): Promise<MemberOutcome[]> {
  const outcomes: MemberOutcome[] = [];
  let stopped = false;
  const runChain = async (chain: number[]) => {
    let before: Promise<void> = Promise.resolve(); // the previous member of the chain is ready
    const running: Promise<void>[] = [];
    for (const ordinal of chain) {
      const previous = before;
      let own!: () => void;
      const ownReady = new Promise<void>((resolve) => (own = resolve));
      // Ready in chain order: a member kept as it runs must not let the next one stop before the one
      // before it is ready.
      const ready = Promise.all([previous, ownReady]).then(() => undefined);
      before = ready;
      const gate: Gate = {
        wait: async () => {
          await previous;
          if (stopped) throw new RolloutStopped();
        },
        ready: own,
      };
      running.push(
        (async () => {
          try {
            if (stopped) throw new RolloutStopped();
            outcomes[ordinal] = await rollMember(backend, members[ordinal]!, options, gate);
          } catch (error) {
            if (error instanceof RolloutStopped) outcomes[ordinal] = { ordinal, kind: "not-begun" };
            else {
              stopped = true;
              outcomes[ordinal] = { ordinal, kind: "failed", error: error as Error };
            }
          } finally {
            own(); // ended one way or another: the chain moves on (and sees `stopped`)
          }
        })(),
      );
      // Prepare at most one member ahead: the next one starts once the one before this is ready.
      await previous;
    }
    await Promise.all(running);
  };
  await Promise.all(plan.chains.map(runChain));
  return outcomes;
}

/** One line for a failed rollout: which member failed and why, what was rolled, what was left. */
export function describeFailedRollout(fleet: string, members: FleetMemberPlan[], outcomes: MemberOutcome[], order: number[]): string {
  const named = (kind: MemberOutcome["kind"]) => order.filter((o) => outcomes[o]?.kind === kind).map((o) => members[o]!.peId);
  const failed = order.map((o) => outcomes[o]).filter((o): o is Extract<MemberOutcome, { kind: "failed" }> => o?.kind === "failed");
  const waiting = order.map((o) => outcomes[o]).filter((o): o is Extract<MemberOutcome, { kind: "waiting" }> => o?.kind === "waiting");
  const lines = failed.length
    ? [`reseat: fleet "${fleet}": the rollout stopped at ${failed.map((f) => members[f.ordinal]!.peId).join(", ")}.`]
    : [`reseat: fleet "${fleet}": members wait for their node: ${waiting.map((w) => members[w.ordinal]!.peId).join(", ")}.`];
  for (const f of failed) lines.push(`  ${members[f.ordinal]!.peId}: ${f.error.message}`);
  for (const w of waiting) lines.push(`  ${members[w.ordinal]!.peId} waits (left as it runs, never moved to another node): ${w.reason}`);
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
