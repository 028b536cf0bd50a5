// The Executable dynamic resource: one container generation of a processing element.
// Any change in REPLACE_FIELDS replaces it, create-before-delete: the new resource's create performs
// the staged swap under the PE's lock (the old executable stops before the new one starts, so two
// never write to one volume; a new one that fails is reverted), and the replaced resource's delete
// removes only its own, already stopped, executable.
import * as pulumi from "@pulumi/pulumi";
import type { ExecutableDesired } from "../backend/backend";
import type * as Runtime from "./runtime";
import type { EngineCredentials } from "../backend/docker/connection";

/**
 * Loads reseat's code by package identity, never by path. Pulumi stores this provider, serialized, in
 * every resource's state (`__provider`) and runs read/delete — refresh, destroy, the removal of each
 * replaced executable — with the copy from state. Its dynamic-provider host evaluates the text with no
 * file name, in a process whose working directory is the Pulumi project's (Pulumi.yaml's folder, or its
 * `main`'s). A require anchored there finds `reseat` wherever the project installed it (node_modules of
 * the folder or a parent, NODE_PATH) — and, in the reseat checkout itself, through the package's
 * self-reference (its "exports" map). So the state holds no path and a stack can move between runners.
 *
 * A local function (not an import) so that the serializer copies these two lines by value: an imported
 * module inside node_modules would be captured as a require of its file path.
 */
function loadRuntime(): typeof Runtime {
  return require("node:module").createRequire(process.cwd() + "/")("reseat/provider/runtime");
}

// Each method only forwards: what Pulumi stores is these few lines, with no path and no captured objects.
export const executableProvider: pulumi.dynamic.ResourceProvider = {
  check: async (olds, news) => ({ inputs: await loadRuntime().checkExecutable(news, olds) }),
  diff: async (_id, olds, news) => loadRuntime().diffExecutable(olds, news),
  create: async (inputs) => loadRuntime().createExecutable(inputs),
  read: async (id, props) => loadRuntime().readExecutable(id, props),
  update: async (_id, olds, news) => loadRuntime().updateExecutable(olds, news),
  delete: async (_id, props) => loadRuntime().deleteExecutable(props),
};

export type ExecutableArgs = { [K in keyof Omit<ExecutableDesired, "imageId">]: pulumi.Input<ExecutableDesired[K]> } & {
  /** Secrets to reach the engine and the image's registry (a Pulumi secret: encrypted in state). */
  engineCredentials?: pulumi.Input<EngineCredentials>;
};

export class Executable extends pulumi.dynamic.Resource {
  declare readonly executableId: pulumi.Output<string>;
  declare readonly executableName: pulumi.Output<string>;
  declare readonly generation: pulumi.Output<number>;
  declare readonly host: pulumi.Output<string>;
  declare readonly replacedAt: pulumi.Output<string>;
  declare readonly readyAt: pulumi.Output<string>;
  declare readonly imageId: pulumi.Output<string>;
  declare readonly commitIntervalMs: pulumi.Output<number>;
  declare readonly lastCommit: pulumi.Output<{ seq: number; at: string; bytes: number } | null>;
  declare readonly commitLagMs: pulumi.Output<number | null>;
  declare readonly resumedFrom: pulumi.Output<"local" | "persistent" | "empty" | null>;
  declare readonly resumedSeq: pulumi.Output<number | null>;
  declare readonly lastCommitError: pulumi.Output<string | null>;
  /** The last replacement failed and the previous spec serves again (see failedSpecHash). */
  declare readonly reverted: pulumi.Output<boolean>;
  declare readonly failedSpecHash: pulumi.Output<string | null>;

  constructor(name: string, args: ExecutableArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = Object.fromEntries(
      ["executableId", "executableName", "generation", "host", "replacedAt", "readyAt", "imageId", "lastCommit", "commitLagMs", "resumedFrom", "resumedSeq", "lastCommitError", "commitStatusAt", "reverted", "failedSpecHash"].map((key) => [key, undefined]),
    );
    super(executableProvider, name, { ...args, ...outputs }, { deleteBeforeReplace: false, ...opts }, "reseat", "Executable");
  }
}
