// The base of reseat's Pulumi resources. They are Pulumi dynamic resources (type
// `pulumi-nodejs:dynamic/reseat:<Kind>`, run by Pulumi's Node.js dynamic-provider host), but the
// provider Pulumi keeps in every resource's inputs and outputs (`__provider`) is not a serialized
// closure: it is one line that loads reseat's runtime by package identity.
//
// Why not pulumi.dynamic.Resource: its closure serializer writes ~2.3 KB per resource (each method
// wrapped in its own scope), twice per resource (inputs and outputs), and Pulumi's file backend
// rewrites the whole checkpoint after every step — that text was a third of a group member's checkpoint.
//
// The host evaluates this text with no file name, in a process whose working directory is the
// Pulumi project's. A require anchored there finds `reseat` wherever the project installed it
// (node_modules of the folder or a parent) and, in the reseat checkout itself, through the package's
// self-reference (its "exports" map). So the state holds no path and a stack can move between runners.
import * as pulumi from "@pulumi/pulumi";
import { PROVIDER_KEY } from "../plan/engineRecord";
import type { ProviderKind } from "./runtime";

/** What Pulumi stores as the provider of a resource of this kind (~130 bytes, no path). */
export function providerText(kind: ProviderKind): string {
  return `exports.handler=()=>require("node:module").createRequire(process.cwd()+"/")("reseat/provider/runtime").providers.${kind};`;
}

export abstract class ReseatResource extends pulumi.CustomResource {
  protected constructor(kind: ProviderKind, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(`pulumi-nodejs:dynamic/reseat:${kind}`, name, { ...props, [PROVIDER_KEY]: providerText(kind) }, opts);
  }
}
