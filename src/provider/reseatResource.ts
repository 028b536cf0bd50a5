// The base of reseat's Pulumi resources. It shows Pulumi one of two faces of the same runtime
// (runtime.ts `providers`):
// - "dynamic" (the default, Node programs that import reseat): Pulumi dynamic resources (type
//   `pulumi-nodejs:dynamic/reseat:<Kind>`, run by Pulumi's Node.js dynamic-provider host);
// - "package" (inside reseat's provider plugin, src/plugin/): resources of the `reseat` package
//   (`reseat:index:<Kind>`), served by the plugin itself, so that components it constructs for Python,
//   YAML or any other language never need the Node-only dynamic-provider host (pulumi/pulumi#5455).
//
// In the dynamic face, the provider Pulumi keeps in every resource's inputs and outputs (`__provider`)
// is not a serialized closure: it is one line that loads reseat's runtime by package identity.
// Why not pulumi.dynamic.Resource: its closure serializer writes ~2.3 KB per resource (each method
// wrapped in its own scope), twice per resource (inputs and outputs), and Pulumi's file backend
// rewrites the whole checkpoint after every step — that text was a third of a group member's checkpoint.
//
// The host evaluates this text with no file name, in a process whose working directory is the
// Pulumi project's. A require anchored there finds `reseat` wherever the project installed it
// (node_modules of the folder or a parent) and, in the reseat checkout itself, through the package's
// self-reference (its "exports" map). So the state holds no path and a stack can move between runners.
// test/integration/dynamicProviderHost.test.ts pins this line against the real host.
import * as pulumi from "@pulumi/pulumi";
import { PROVIDER_KEY } from "../plan/engineRecord";
import type { ProviderKind } from "./runtime";

/** What Pulumi stores as the provider of a resource of this kind (~130 bytes, no path). */
export function providerText(kind: ProviderKind): string {
  return `exports.handler=()=>require("node:module").createRequire(process.cwd()+"/")("reseat/provider/runtime").providers.${kind};`;
}

/** The package whose resources the plugin face registers (its name is the plugin's: pulumi-resource-reseat). */
export const PACKAGE_NAME = "reseat";

let packageFace: { version: string } | undefined;

/** Called once by the provider plugin: from then on, resources are the `reseat` package's, at this version. */
export function usePackageFace(version: string): void {
  packageFace = { version };
}

/** The type token a resource of this kind registers under, in this process's face. */
export function resourceType(kind: ProviderKind): string {
  return packageFace ? `${PACKAGE_NAME}:index:${kind}` : `pulumi-nodejs:dynamic/reseat:${kind}`;
}

export abstract class ReseatResource extends pulumi.CustomResource {
  protected constructor(kind: ProviderKind, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    if (packageFace) super(resourceType(kind), name, props, { version: packageFace.version, ...opts });
    else super(resourceType(kind), name, { ...props, [PROVIDER_KEY]: providerText(kind) }, opts);
  }
}
