// The StateVolume dynamic resource: a PE's local state storage, created once and never replaced.
import * as pulumi from "@pulumi/pulumi";
import type * as Runtime from "./runtime";
import type { EngineTarget } from "../backend/backend";
import type { EngineCredentials } from "../backend/docker/connection";

const RUNTIME_MODULE: string = require.resolve("./runtime");

export const stateVolumeProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id, olds, news) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return runtime.diffVolume(olds, news);
  },
  async create(inputs) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return runtime.createVolume(inputs);
  },
  async read(id, props) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return runtime.readVolume(id, props);
  },
  async delete(id, props) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    await runtime.deleteVolume(id, props);
  },
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
