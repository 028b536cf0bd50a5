// The StateVolume dynamic resource: a PE's local state storage, created once and never replaced.
import * as pulumi from "@pulumi/pulumi";
import type { EngineTarget } from "../backend/backend";
import type { EngineCredentials } from "../backend/engineCredentials";
import { ReseatResource } from "./reseatResource";

export interface StateVolumeArgs {
  peId: pulumi.Input<string>;
  name: pulumi.Input<string>;
  driver: pulumi.Input<string>;
  owner: pulumi.Input<string>;
  engine?: pulumi.Input<EngineTarget>;
  /** Secrets to reach the engine (a Pulumi secret: encrypted in state). */
  engineCredentials?: pulumi.Input<EngineCredentials>;
}

export class StateVolume extends ReseatResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly driver: pulumi.Output<string>;
  declare readonly createdAt: pulumi.Output<string | undefined>;
  declare readonly adopted: pulumi.Output<boolean>;

  constructor(name: string, args: StateVolumeArgs, opts?: pulumi.CustomResourceOptions) {
    super("StateVolume", name, { ...args, createdAt: undefined, adopted: undefined }, opts);
  }
}
