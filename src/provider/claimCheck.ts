// The ClaimCheck dynamic resource: stands before a PE's PersistentVolumeClaim (declared with
// @pulumi/kubernetes) and guards it. Its check refuses a claim that exists for another owner or was not
// made by reseat (the single-writer rule), its diff refuses any change that would need a new claim —
// both during preview, before anything is created. It creates and deletes nothing itself.
import * as pulumi from "@pulumi/pulumi";
import type * as Runtime from "./runtime";
import type { ClaimFields } from "../plan/claimPlan";

const RUNTIME_MODULE: string = require.resolve("./runtime");

export const claimCheckProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds, news) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return { inputs: await runtime.checkClaim(news) };
  },
  async diff(_id, olds, news) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return runtime.diffClaim(olds, news);
  },
  async create(inputs) {
    const runtime: typeof Runtime = require(RUNTIME_MODULE);
    return { id: `${inputs.namespace}/${inputs.name}`, outs: await runtime.checkClaim(inputs) };
  },
  async update(_id, _olds, news) {
    return { outs: news };
  },
};

export type ClaimCheckArgs = { [K in keyof ClaimFields]: pulumi.Input<ClaimFields[K]> };

export class ClaimCheck extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly namespace: pulumi.Output<string>;

  constructor(name: string, args: ClaimCheckArgs, opts?: pulumi.CustomResourceOptions) {
    super(claimCheckProvider, name, args, opts, "reseat", "ClaimCheck");
  }
}
