// What the Fleet dynamic resource does (its provider is `providers.Fleet` in runtime.ts): one Pulumi
// resource for N members, each rolled through the one replacement routine. Its state is the spec as
// written (once), the engine, the resolved images, and a short observation per member.
import type { Backend, EngineIdentity, PeStatusRecords } from "../backend/backend";
import { openBackend } from "../backend/open";
import { holderName } from "../lease/lease";
import { assertSameEngine, recordOutdated } from "../plan/engineRecord";
import {
  FleetChecked,
  FleetFields,
  FleetMemberPlan,
  FleetMemberState,
  imageRefsOf,
  parseFleet,
  planFleetDiff,
  planFleetMembers,
  removedMembers,
} from "../plan/fleetPlan";
import { specHash } from "../plan/executablePlan";
import { MemberFingerprint, progressLines, ProgressLine } from "../plan/rollout";
import { describeFailedRollout, inLanes, MemberOutcome, rollFleet } from "../replacement/fleetRollout";
import { retire, ReseatResult } from "../replacement/reseat";
import { observeCommits, observeRevert, revertOutputs } from "./observe";
import { commitOutputs } from "../plan/commitStatus";
import { checkImageId, imageIdForUp } from "./images";
import { fleetUnknownUntilUp } from "../schema/inputs";
import { randomUUID } from "node:crypto";
import { changedReplaceOnChanges } from "../plan/replaceOnChanges";

type Recorded = { engineIdentity?: EngineIdentity; __provider?: string; replaceOnChanges?: string[] };
export type FleetInputs = FleetChecked & Recorded;
/** `declaredBy`: the token this Fleet resource's create minted (absent for fleets recorded before 0.4). */
export type FleetState = FleetInputs & { members: FleetMemberState[]; declaredBy?: string };

/**
 * Members whose executables carry this Fleet resource's token (ExecutableDesired.declaredBy): a
 * forced replacement of the fleet rolls every member to the new resource, and the replaced fleet's
 * delete then removes only what it made itself.
 */
function declaredBy<M extends { desired: FleetMemberPlan["desired"] }>(members: M[], token: string | undefined): M[] {
  return token ? members.map((m) => ({ ...m, desired: { ...m.desired, declaredBy: token } })) : members;
}

/** Engine calls at once outside a rollout (observing, removing): enough to overlap, not to flood. */
const LANES = 8;

function subject(fleet: Pick<FleetFields, "name">): string {
  return `fleet "${fleet.name}"`;
}

async function sameEngine(engine: Backend, fleet: Pick<FleetFields, "name">, recorded: EngineIdentity | undefined): Promise<EngineIdentity> {
  const current = await engine.identity();
  assertSameEngine(subject(fleet), recorded, current);
  return current;
}

/**
 * Validates the spec (every bad field at once), records the engine, resolves each image once without
 * pulling (check runs in `pulumi preview` too); an image the engine lacks is left to `up` (a stand-in id).
 */
export async function checkFleet(news: FleetFields, olds?: Partial<FleetState>): Promise<FleetInputs> {
  const untilUp = fleetUnknownUntilUp(news, olds); // a preview's unknown template: validated and resolved at up
  if (untilUp) return untilUp as FleetInputs;
  const group = parseFleet(news);
  const engine = openBackend(group.engine);
  const engineIdentity = await sameEngine(engine, news, olds?.engineIdentity);
  return { ...news, engine: group.engine, imageIds: await checkImageIds(engine, imageRefsOf(group)), engineIdentity };
}

async function checkImageIds(engine: Backend, refs: string[]): Promise<Record<string, string>> {
  const imageIds: Record<string, string> = {};
  for (const ref of refs) imageIds[ref] = await checkImageId(engine, ref);
  return imageIds;
}

/** `up`: each image check left to it pulled, before any member stops; the state records real ids. */
async function pullImages(engine: Backend, fleet: FleetInputs): Promise<FleetInputs> {
  const imageIds: Record<string, string> = {};
  for (const [ref, checked] of Object.entries(fleet.imageIds)) imageIds[ref] = await imageIdForUp(engine, ref, checked, subject(fleet), "template.image");
  return { ...fleet, imageIds };
}

export function diffFleet(olds: FleetState, news: FleetInputs) {
  if (news.engineIdentity) assertSameEngine(subject(olds), olds.engineIdentity, news.engineIdentity);
  const { changes } = planFleetDiff(olds, news);
  // Paths the Fleet's replaceOnChanges option names: a change there replaces it (every member rolled).
  const forced = changedReplaceOnChanges(olds as never, news as never, news.replaceOnChanges, [
    "members",
    "imageIds",
    "engineIdentity",
    "declaredBy",
    "__provider",
  ]);
  const optionChanged = JSON.stringify(olds.replaceOnChanges ?? []) !== JSON.stringify(news.replaceOnChanges ?? []);
  return {
    changes: changes || forced.length > 0 || optionChanged || recordOutdated(olds as never, news as never).length > 0,
    replaces: forced,
    deleteBeforeReplace: false,
  };
}

/**
 * The members' workload status and revert records, read for all of them at once where the engine can
 * (Kubernetes: one pod list and one record list, instead of a list of every pod per member); undefined
 * where it reads them one by one anyway (Docker and the fake: files beside each volume).
 */
async function readMembersRecords(engine: Backend, members: FleetMemberPlan[]): Promise<Map<string, PeStatusRecords> | undefined> {
  // Unreadable in bulk (an API hiccup): each member is then read on its own, as without the bulk read.
  return engine
    .readStatusRecords?.(
      members.map((m) => m.volume.name),
      { lanes: LANES },
    )
    .catch(() => undefined);
}

/** A member as it runs now, for its output. `records`: its records read in bulk (readMembersRecords), when they were. */
async function observeMember(
  engine: Backend,
  member: FleetMemberPlan,
  result: ReseatResult | undefined,
  updated: boolean,
  records?: Map<string, PeStatusRecords>,
): Promise<FleetMemberState | undefined> {
  let running = result;
  if (!running) {
    const live = (await engine.listExecutables(member.peId))
      .filter((e) => e.running && (!e.owner || e.owner === member.desired.owner))
      .sort((a, b) => b.generation - a.generation)[0];
    if (!live) return undefined;
    const at = live.startedAt ?? new Date().toISOString();
    running = {
      executableId: live.id,
      executableName: live.name,
      generation: live.generation,
      host: live.host ?? (await engine.identity()).name,
      replacedAt: at,
      readyAt: at,
      adopted: true,
      retired: [],
      reverted: false,
    };
  }
  const bulk = records?.get(member.volume.name);
  const { commitStatusAt: _at, ...commits } = records
    ? commitOutputs(bulk?.workload, running.generation, new Date())
    : await observeCommits(engine, member.volume.name, running.generation);
  const desiredHash = specHash(member.desired);
  const runsHash = (await engine.inspectExecutable(running.executableId))?.specHash ?? desiredHash;
  // What it runs, which is not the template's when a rollout stopped before it or reverted it.
  const imageRef = runsHash === desiredHash ? member.desired.imageRef : ((await engine.desiredOf(running.executableId))?.imageRef ?? "");
  return {
    peId: member.peId,
    ordinal: member.ordinal,
    executableId: running.executableId,
    generation: running.generation,
    host: running.host,
    imageRef,
    specHash: runsHash,
    replacedAt: running.replacedAt,
    readyAt: running.readyAt,
    ...commits,
    ...(records ? revertOutputs(bulk?.revert) : await observeRevert(engine, member.volume.name)),
    updated: updated && runsHash === desiredHash,
  };
}

/** Rolls every member to the desired spec; on a failure, records what runs and fails the step. */
async function rollAndRecord(checked: FleetInputs, olds: FleetState | undefined, id: string, token: string | undefined): Promise<FleetState> {
  const engine = openBackend(checked.engine);
  const engineIdentity = await sameEngine(engine, checked, olds?.engineIdentity ?? checked.engineIdentity);
  const news = await pullImages(engine, checked);
  const planned = planFleetMembers(news, olds);
  const rollout = planned.rollout;
  const members = declaredBy(planned.members, token);
  if (olds) {
    // Scaled down: the members beyond the new size stop and go; their volumes stay (scale back up resumes).
    await inLanes(
      declaredBy(removedMembers(olds, news), token),
      LANES,
      async (m) => void (await retire(engine, m.desired, holderName("pulumi"), { sameDeclarer: true })),
    );
  }
  const outcomes = await rollFleet(engine, rollout, members, { holder: holderName("pulumi") });
  const observed: FleetMemberState[] = [];
  const records = await readMembersRecords(engine, members);
  await inLanes(members, LANES, async (member) => {
    const outcome: MemberOutcome | undefined = outcomes[member.ordinal];
    const result = outcome && (outcome.kind === "done" || outcome.kind === "held") ? outcome.result : undefined;
    const state = await observeMember(engine, member, result, !member.held, records);
    if (state) observed[member.ordinal] = state;
  });
  const state: FleetState = { ...news, engineIdentity, members: observed.filter(Boolean), ...(token ? { declaredBy: token } : {}) };
  // A member waiting for its node fails the up too when it is behind: the next up rolls it once the node is back.
  const waitingBehind = outcomes.some((o) => o?.kind === "waiting" && !observed[o.ordinal]?.updated);
  if (outcomes.some((o) => o?.kind === "failed") || waitingBehind) {
    const message = describeFailedRollout(news.name, members, outcomes, rollout.order);
    // Pulumi records these properties (the members as they run now) and fails the update.
    throw Object.assign(new Error(message), { id, properties: state, reasons: [message] });
  }
  return state;
}

function fleetId(fleet: FleetFields): string {
  return `${fleet.project}/${fleet.stack}/${fleet.name}`;
}

export async function createFleet(inputs: FleetInputs): Promise<{ id: string; outs: FleetState }> {
  const id = fleetId(inputs);
  return { id, outs: await rollAndRecord(inputs, undefined, id, randomUUID()) };
}

export async function updateFleet(id: string, olds: FleetState, news: FleetInputs): Promise<{ outs: FleetState }> {
  return { outs: await rollAndRecord(news, olds, id, olds.declaredBy) };
}

/** Refresh: each member as it runs now (a member with nothing running is left out). */
export async function readFleet(id: string, props: FleetState): Promise<{ id: string; props: FleetState }> {
  const engine = openBackend(props.engine);
  await sameEngine(engine, props, props.engineIdentity);
  const { members } = planFleetMembers(props);
  const observed: FleetMemberState[] = [];
  const before = new Map((props.members ?? []).map((m) => [m.ordinal, m]));
  const records = await readMembersRecords(engine, members);
  await inLanes(members, LANES, async (member) => {
    const state = await observeMember(engine, member, undefined, !member.held, records);
    if (!state) return;
    // The same executable as recorded: keep when it was replaced and seen ready (the engine knows only its start).
    const recorded = before.get(member.ordinal);
    observed[member.ordinal] = recorded?.executableId === state.executableId ? { ...state, replacedAt: recorded.replacedAt, readyAt: recorded.readyAt } : state;
  });
  return { id, props: { ...props, members: observed.filter(Boolean) } };
}

/** Every member's executable goes; the volumes stay unless the template says volume.retainOnDestroy: false. */
export async function deleteFleet(props: FleetState): Promise<void> {
  const engine = openBackend(props.engine);
  await sameEngine(engine, props, props.engineIdentity);
  const { group, members } = planFleetMembers(props);
  await inLanes(
    declaredBy(members, props.declaredBy),
    LANES,
    async (member) => void (await retire(engine, member.desired, holderName("pulumi"), { sameDeclarer: true })),
  );
  const spec = group.members[0]?.spec;
  if (spec && !spec.volume.retainOnDestroy) {
    await inLanes(members, LANES, async (member) => {
      for (const claim of [member.volume, member.storeVolume]) {
        if (claim && (await engine.inspectVolume(claim.name))) await engine.removeVolume(claim.name);
      }
    });
  }
}

/**
 * What an `up` of these fields would do to each member, from what runs on the engine now (not from
 * state): "replacing member f-4 (1 of 3): image app:v1 -> app:v2", "creating member f-5 (1 of 1)", … —
 * the per-member lines a preview of a fleet shows (its one resource's diff says only "template").
 */
export async function previewFleet(fields: FleetFields): Promise<ProgressLine[]> {
  const group = parseFleet(fields);
  const engine = openBackend(group.engine);
  // Read-only, like check: this runs at program time, in a preview as in an up.
  const imageIds = await checkImageIds(engine, imageRefsOf(group));
  const { rollout, members } = planFleetMembers({ ...fields, engine: group.engine, imageIds });
  const running = new Map<string, { id: string; specHash: string; generation: number }>();
  for (const e of await engine.listExecutables()) {
    const seen = running.get(e.peId);
    if (e.running && (!seen || seen.generation < e.generation)) running.set(e.peId, e);
  }
  const desired: MemberFingerprint[] = [];
  const previous = new Map<number, MemberFingerprint>();
  await inLanes(members, LANES, async (member) => {
    const hash = specHash(member.desired);
    desired[member.ordinal] = { revision: hash, replaceRevision: hash, image: member.desired.imageRef };
    const live = running.get(member.peId);
    if (!live) return;
    const image = live.specHash === hash ? member.desired.imageRef : (await engine.desiredOf(live.id))?.imageRef;
    previous.set(member.ordinal, { revision: live.specHash, replaceRevision: live.specHash, ...(image ? { image } : {}) });
  });
  return progressLines(rollout, desired, previous, group.rollout.partition);
}
