// The StateVolume dynamic resource: a PE's local state storage, created once and never replaced.
import * as pulumi from "@pulumi/pulumi";
import type * as Runtime from "./runtime";
import type { EngineTarget } from "../backend/backend";
import type { EngineCredentials } from "../backend/docker/connection";

/** Loads reseat's code by package identity: see executable.ts for why, and why it is local. */
function loadRuntime(): typeof Runtime {
  return require("node:module").createRequire(process.cwd() + "/")("reseat/provider/runtime");
}

export const stateVolumeProvider: pulumi.dynamic.ResourceProvider = {
  check: async (olds, news) => ({ inputs: await loadRuntime().checkVolume(news, olds) }),
  diff: async (_id, olds, news) => loadRuntime().diffVolume(olds, news),
  create: async (inputs) => loadRuntime().createVolume(inputs),
  read: async (id, props) => loadRuntime().readVolume(id, props),
  update: async (_id, olds, news) => loadRuntime().updateVolume(olds, news),
  delete: async (id, props) => loadRuntime().deleteVolume(id, props),
};

export interface StateVolumeArgs {
  peId: pulumi.Input<string>;
  name: pulumi.Input<string>;
  driver: pulumi.Input<string>;
  owner: pulumi.Input<string>;
  engine?: pulumi.Input<EngineTarget>;
  /** Secrets to reach the engine (a Pulumi secret: encrypted in state). */
  engineCredentials?: pulumi.Input<EngineCredentials>;
}

export class StateVolume extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly driver: pulumi.Output<string>;
  declare readonly createdAt: pulumi.Output<string | undefined>;
  declare readonly adopted: pulumi.Output<boolean>;

  constructor(name: string, args: StateVolumeArgs, opts?: pulumi.CustomResourceOptions) {
    super(stateVolumeProvider, name, { ...args, createdAt: undefined, adopted: undefined }, opts, "reseat", "StateVolume");
  }
}
