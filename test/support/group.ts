// Helpers for group tests: the groups program, its stack config, its outputs, and an independent
// observer of member availability built on Engine events only.
import * as fs from "node:fs";
import * as path from "node:path";
import { LABELS } from "../../src/backend/backend";
import { followEvents } from "../../src/backend/docker/events";
import { CliResult, Project, ROOT, connection, docker, engineEventsUntilNow, expectOk, reseatCli } from "./harness";

export const GROUPS_PROGRAM = path.join(ROOT, "dist", "stacks", "groups.js");

/** Rewrites the stack's config with the given group specs (JSON is valid YAML). */
export function setGroups(project: Project, groups: unknown[]): void {
  // As the harness's setSpecs does: the whole file, fresh (no secrets in these stacks).
  const file = path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`);
  fs.writeFileSync(file, JSON.stringify({ config: { "reseat:groups": groups } }, null, 2));
}

export function groupCli(project: Project, command: string): Promise<CliResult> {
  return reseatCli(project, command, "--program", GROUPS_PROGRAM);
}

export async function mustGroup(project: Project, command: string): Promise<CliResult> {
  return expectOk(command, await groupCli(project, command));
}

export interface MemberOutputs {
  ordinal: number;
  peId: string;
  generation: number;
  executableId: string;
  executableName: string;
  volumeName: string;
  imageRef: string;
  revision: string;
  updated: boolean;
  replacedAt: string;
  readyAt: string;
}

export interface GroupOutputs {
  replicas: number;
  maxUnavailable: number;
  partition: number;
  updatedReplicas: number;
  members: MemberOutputs[];
}

export function groupOutputs(result: CliResult, name: string): GroupOutputs {
  const groups = result.doc.outputs?.groups as Record<string, GroupOutputs> | undefined;
  const group = groups?.[name];
  if (!group) throw new Error(`no outputs for group ${name}: ${JSON.stringify(result.doc.outputs)}`);
  return group;
}

export interface MemberEvent {
  action: "kill" | "die" | "start";
  peId: string;
  id: string;
  timeNano: number;
}

export interface Availability {
  /** The largest number of watched members without a running executable at the same moment. */
  maxUnavailable: number;
  /** Members in the order their old executable was told to stop (first kill/die per member). */
  stopOrder: string[];
  /** Members that got a new executable started. */
  started: string[];
  events: MemberEvent[];
}

/**
 * Watches members' executables through Engine events only (container kill/die/start, labelled with
 * the PE id). A member counts as unavailable from its running executable's `die` until a `start`.
 * Members are taken as running when the watch begins (checked against the engine).
 */
export async function watchAvailability(peIds: string[]): Promise<{ stop: () => Promise<Availability> }> {
  const watched = new Set(peIds);
  const watchStartNano = Date.now() * 1e6;
  const running = new Map<string, Set<string>>(peIds.map((id) => [id, new Set<string>()]));
  const live = await docker.listContainers({ filters: { label: [`${LABELS.role}=executable`] } });
  for (const c of live) {
    const peId = c.Labels[LABELS.peId];
    if (peId && watched.has(peId)) running.get(peId)!.add(c.Id);
  }
  const since = Math.floor(Date.now() / 1000) - 1;
  const events: MemberEvent[] = [];
  const seen = new Set<string>();
  const collect = (e: { Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } }) => {
    const peId = e.Actor.Attributes[LABELS.peId];
    if (!peId || !watched.has(peId) || e.timeNano < watchStartNano || seen.has(`${e.id}/${e.Action}/${e.timeNano}`)) return;
    seen.add(`${e.id}/${e.Action}/${e.timeNano}`);
    events.push({ action: e.Action as MemberEvent["action"], peId, id: e.id, timeNano: e.timeNano });
  };
  const filters = { type: ["container"], label: [`${LABELS.role}=executable`], event: ["start", "die", "kill"] };
  const subscription = await followEvents(docker, connection.address, filters, collect, { since });
  return {
    stop: async () => {
      // What the live stream has not delivered yet, from the engine's own log up to now (no sleep for it).
      const lastNano = events.reduce((max, e) => Math.max(max, e.timeNano), 0);
      for (const e of await engineEventsUntilNow(docker, Math.max(since, Math.floor(lastNano / 1e9)), filters)) collect(e);
      subscription.close();
      let maxUnavailable = [...running.values()].filter((ids) => ids.size === 0).length;
      const stopOrder: string[] = [];
      const started: string[] = [];
      for (const e of [...events].sort((a, b) => a.timeNano - b.timeNano)) {
        const ids = running.get(e.peId)!;
        if ((e.action === "kill" || e.action === "die") && !stopOrder.includes(e.peId) && ids.has(e.id)) stopOrder.push(e.peId);
        if (e.action === "die") ids.delete(e.id);
        if (e.action === "start") {
          ids.add(e.id);
          started.push(e.peId);
        }
        maxUnavailable = Math.max(maxUnavailable, [...running.values()].filter((s) => s.size === 0).length);
      }
      return { maxUnavailable, stopOrder, started, events };
    },
  };
}

/** Rewrites the stack's config with the given fleet specs (key `reseat:fleets`). */
export function setFleets(project: Project, fleets: unknown[]): void {
  const file = path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`);
  fs.writeFileSync(file, JSON.stringify({ config: { "reseat:fleets": fleets } }, null, 2));
}

export interface FleetMemberOutputs {
  ordinal: number;
  peId: string;
  generation: number;
  executableId: string;
  imageRef: string;
  specHash: string;
  updated: boolean;
  reverted: boolean;
  lastCommit: { seq: number } | null;
}

export interface FleetOutputs {
  replicas: number;
  updatedReplicas: number;
  members: FleetMemberOutputs[];
}

export function fleetOutputs(result: CliResult, name: string): FleetOutputs {
  const fleet = (result.doc.outputs?.fleets as Record<string, FleetOutputs> | undefined)?.[name];
  if (!fleet) throw new Error(`no outputs for fleet ${name}: ${JSON.stringify(result.doc.outputs)}`);
  return fleet;
}

export interface DemoGroupOverrides {
  image?: string;
  replicas?: number;
  maxUnavailable?: number;
  partition?: number;
  command?: string[];
  template?: Record<string, unknown>;
}

/**
 * A group or fleet spec of the demo workload on the host network, member o on port basePort + o: what
 * the group and fleet tests roll.
 */
export function demoGroupSpec(name: string, basePort: number, replicas: number, overrides: DemoGroupOverrides = {}) {
  return {
    name,
    replicas: overrides.replicas ?? replicas,
    template: {
      image: overrides.image ?? "reseat-demo-workload:v1",
      ...(overrides.command ? { command: overrides.command } : {}),
      network: "host",
      env: { PORT: `{{ordinal + ${basePort}}}` },
      commitInterval: "5s",
      stop: { graceSeconds: 5 },
      persistentStore: { kind: "none" },
      resources: { memoryMiB: 128 },
      readiness: { httpGet: { port: `{{ordinal + ${basePort}}}`, path: "/healthz" }, timeout: "20s" },
      ...overrides.template,
    },
    rollout: { maxUnavailable: overrides.maxUnavailable ?? 1, partition: overrides.partition ?? 0 },
  };
}

/** The fleet's members as Pulumi recorded them in the checkpoint (also after a failed update). */
export function recordedFleetMembers(checkpoint: string): FleetMemberOutputs[] {
  const doc = JSON.parse(checkpoint) as { checkpoint: { latest: { resources: { type: string; outputs?: { members?: FleetMemberOutputs[] } }[] } } };
  return doc.checkpoint.latest.resources.find((r) => r.type === "pulumi-nodejs:dynamic/reseat:Fleet")?.outputs?.members ?? [];
}
