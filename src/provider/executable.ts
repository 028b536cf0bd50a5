// The Executable dynamic resource: one container generation of a processing element.
// Any change in REPLACE_FIELDS replaces it, create-before-delete: the new resource's create performs
// the staged swap under the PE's lock (the old executable stops before the new one starts, so two
// never write to one volume; a new one that fails is reverted), and the replaced resource's delete
// removes only its own, already stopped, executable.
import { OUTPUT_FIELDS } from "@reseat/state/contract";
import * as pulumi from "@pulumi/pulumi";
import type { ExecutableDesired } from "../backend/backend";
import type { EngineCredentials } from "../backend/engineCredentials";
import { ReseatResource } from "./reseatResource";
import { REPLACE_ON_CHANGES_KEY } from "../plan/replaceOnChanges";

export type ExecutableArgs = { [K in keyof Omit<ExecutableDesired, "imageId">]: pulumi.Input<ExecutableDesired[K]> } & {
  /** Secrets to reach the engine and the image's registry (a Pulumi secret: encrypted in state). */
  engineCredentials?: pulumi.Input<EngineCredentials>;
};

export class Executable extends ReseatResource {
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
    const outputs = Object.fromEntries([...OUTPUT_FIELDS, "imageId"].map((key) => [key, undefined]));
    // replaceOnChanges reaches the diff as an input too (see src/plan/replaceOnChanges.ts).
    const replaceOnChanges = opts?.replaceOnChanges?.length ? { [REPLACE_ON_CHANGES_KEY]: opts.replaceOnChanges } : {};
    super("Executable", name, { ...args, ...replaceOnChanges, ...outputs }, { deleteBeforeReplace: false, ...opts });
  }
}
