// Baseline program for bench/rolling.ts: `reseatbench:count` plain containers, one minimal dynamic
// resource each, all independent. Run with `reseat up --program dist/bench/plainStack.js`.
import * as pulumi from "@pulumi/pulumi";
import { PlainContainer } from "./plainContainer";

export default async function program(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config("reseatbench");
  const count = config.requireNumber("count");
  const prefix = config.require("prefix");
  const image = config.require("image");
  const containers = Array.from({ length: count }, (_, i) => new PlainContainer(`${prefix}-${i}`, { name: `${prefix}-${i}`, image, memoryMiB: 48 }));
  return { containers: containers.length };
}
