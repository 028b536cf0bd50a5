// The ClaimCheck dynamic resource: stands before a PE's PersistentVolumeClaim (declared with
// @pulumi/kubernetes) and guards it. Its check refuses a claim that exists for another owner or was not
// made by reseat (the single-writer rule), its diff refuses any change that would need a new claim —
// both during preview, before anything is created. At `up` its create takes the claim atomically for
// the PE's owner (create; AlreadyExists: read who owns it, refuse another) before the claim resource
// applies: of two stacks racing for one claim, the loser is told the volume and its owner here, not by a
// Server-Side Apply conflict. It deletes nothing: the claim resource (retainOnDelete) decides that.
import * as pulumi from "@pulumi/pulumi";
import type { ClaimFields } from "../plan/claimPlan";
import { ReseatResource } from "./reseatResource";

export type ClaimCheckArgs = { [K in keyof ClaimFields]: pulumi.Input<ClaimFields[K]> };

export class ClaimCheck extends ReseatResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly namespace: pulumi.Output<string>;

  constructor(name: string, args: ClaimCheckArgs, opts?: pulumi.CustomResourceOptions) {
    super("ClaimCheck", name, args, opts);
  }
}
