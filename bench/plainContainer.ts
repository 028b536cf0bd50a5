// The bench's minimal dynamic resource (see plainRuntime.ts). Like the reseat providers, the
// serialized provider captures only the implementation's path.
import * as pulumi from "@pulumi/pulumi";
import type * as PlainRuntime from "./plainRuntime";

const PLAIN_RUNTIME: string = require.resolve("./plainRuntime");

const plainProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id, olds, news) {
    const replace = olds.image !== news.image || olds.name !== news.name || olds.memoryMiB !== news.memoryMiB;
    return { changes: replace, replaces: replace ? ["image"] : [], deleteBeforeReplace: true };
  },
  async create(inputs) {
    const runtime: typeof PlainRuntime = require(PLAIN_RUNTIME);
    return runtime.createPlain(inputs);
  },
  async delete(id) {
    const runtime: typeof PlainRuntime = require(PLAIN_RUNTIME);
    await runtime.deletePlain(id);
  },
};

export class PlainContainer extends pulumi.dynamic.Resource {
  declare readonly containerId: pulumi.Output<string>;
  constructor(name: string, args: { name: string; image: string; memoryMiB: number }, opts?: pulumi.CustomResourceOptions) {
    super(plainProvider, name, { ...args, containerId: undefined }, opts, "reseatbench", "PlainContainer");
  }
}
