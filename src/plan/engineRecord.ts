// Pure rules about what reseat records in Pulumi state beside a resource's spec: the engine the
// resource lives on (`engineIdentity`), and the serialized provider Pulumi keeps with it. No engine calls.
import type { EngineIdentity } from "@reseat/state/contract";

export class EngineMismatchError extends Error {
  constructor(subject: string, recorded: EngineIdentity, current: EngineIdentity) {
    super(
      `reseat: ${subject} lives on ${describe(recorded)}, but this run talks to ${describe(current)}. ` +
        `reseat does not treat it as gone or create it a second time on another engine. Point this run at the ` +
        `recorded engine (DOCKER_HOST=${recorded.address}, or the spec's docker.host), or, to give up the PE on the ` +
        `old engine, remove it from the stack's state first (pulumi state delete).`,
    );
    this.name = "EngineMismatchError";
  }
}

function describe(engine: EngineIdentity): string {
  return `${engine.kind} engine ${engine.id}${engine.name ? ` on host "${engine.name}"` : ""} (reached at ${engine.address})`;
}

/** Throws when a resource recorded on one engine is handled through another. Nothing recorded: nothing to compare. */
export function assertSameEngine(subject: string, recorded: EngineIdentity | undefined, current: EngineIdentity): void {
  if (recorded?.id && (recorded.kind !== current.kind || recorded.id !== current.id)) {
    throw new EngineMismatchError(subject, recorded, current);
  }
}

/** The key under which Pulumi's dynamic-provider host keeps the serialized provider in inputs and outputs. */
export const PROVIDER_KEY = "__provider";

/**
 * Which parts of the record are outdated although the spec did not change: the stored serialized
 * provider is not the one this program registers (e.g. one written by a release that named its runtime
 * by an absolute path), or no engine is recorded yet, or it was reached at another address. Pulumi
 * rewrites a resource's outputs — where read and delete find the provider — only on create or update,
 * so the diff reports these as an in-place change and the update records them.
 */
export function recordOutdated(olds: Record<string, unknown>, news: Record<string, unknown>): string[] {
  const outdated: string[] = [];
  const newProvider = news[PROVIDER_KEY];
  if (typeof newProvider === "string" && olds[PROVIDER_KEY] !== newProvider) outdated.push(PROVIDER_KEY);
  const oldEngine = olds.engineIdentity as EngineIdentity | undefined;
  const newEngine = news.engineIdentity as EngineIdentity | undefined;
  if (newEngine && (!oldEngine || oldEngine.address !== newEngine.address || oldEngine.name !== newEngine.name)) outdated.push("engineIdentity");
  return outdated;
}
