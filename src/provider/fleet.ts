// The Fleet dynamic resource: N processing elements from one template in ONE Pulumi resource, rolled
// by reseat itself (see src/plan/fleetPlan.ts for why, src/provider/fleetRuntime.ts for what it does).
import * as pulumi from "@pulumi/pulumi";
import { REPLACE_ON_CHANGES_KEY } from "../plan/replaceOnChanges";
import type { FleetFields, FleetMemberState } from "../plan/fleetPlan";
import { ReseatResource } from "./reseatResource";

export type FleetArgs = { [K in keyof FleetFields]: pulumi.Input<FleetFields[K]> };

export class Fleet extends ReseatResource {
  /** Each member as it runs (ordinal order): executable, generation, host, spec hash, commit status. */
  declare readonly members: pulumi.Output<FleetMemberState[]>;
  declare readonly imageIds: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: FleetArgs, opts?: pulumi.CustomResourceOptions) {
    // replaceOnChanges reaches the diff as an input too (see src/plan/replaceOnChanges.ts).
    const replaceOnChanges = opts?.replaceOnChanges?.length ? { [REPLACE_ON_CHANGES_KEY]: opts.replaceOnChanges } : {};
    super("Fleet", name, { ...args, ...replaceOnChanges, members: undefined, imageIds: undefined }, opts);
  }
}
