// A Terraform stack of processing elements: the docker provider (pinned to the release built by
// scripts/build-terraform.sh), a local state file, the status file, and one ProcessingElement per spec.
// Every spec is validated before any construct is made, so one invalid spec fails synth and nothing
// is written.
import { Construct } from "constructs";
import { LocalBackend, TerraformStack } from "cdktf";
import { provider as dockerProvider } from "@cdktf/provider-docker";
import { DOCKER_PROVIDER_SOURCE, DOCKER_PROVIDER_VERSION, ProcessingElement, validateTerraformProcessingElement } from "./processingElement";
import { ReseatStatusFile } from "./status";
import { SpecError } from "../../src/schema/processingElement";
import { findDuplicates } from "../../src/schema/uniqueness";

export interface ReseatTerraformStackProps {
  /** PE specs, as in stacks/Pulumi.<stack>.yaml's `reseat:processingElements`. */
  readonly processingElements: unknown;
  /** The local state file (absolute, or relative to the synthesized stack's folder). */
  readonly statePath: string;
  /** The engine; default: the provider's own default (DOCKER_HOST, else the local socket). */
  readonly dockerHost?: string;
}

/** The list of specs of a stack config ({processingElements: [...]}), or an error in the Pulumi flavour's words. */
export function parseStackConfig(config: unknown): unknown[] {
  const declared = config && typeof config === "object" ? (config as { processingElements?: unknown }).processingElements : undefined;
  if (!Array.isArray(declared)) {
    throw new Error("reseat: invalid stack config:\n  - processingElements: expected a list of processing element specs");
  }
  return declared;
}

export class ReseatTerraformStack extends TerraformStack {
  readonly processingElements: ProcessingElement[];
  readonly status: ReseatStatusFile;

  constructor(scope: Construct, id: string, props: ReseatTerraformStackProps) {
    super(scope, id);
    const declared = Array.isArray(props.processingElements) ? props.processingElements : parseStackConfig(props);
    const named = declared.map((spec, index) => {
      const name = spec && typeof spec === "object" && "peId" in spec ? String(spec.peId) : `processingElements[${index}]`;
      return { name, spec, parsed: validateTerraformProcessingElement(name, spec) };
    });
    // The same collision rules as the Pulumi flavour: one peId, one state volume, one host port each.
    const duplicates = findDuplicates(named.map(({ parsed }, index) => ({ subject: `processingElements[${index}]`, spec: parsed })));
    if (duplicates.length) throw new SpecError("stack config", duplicates);

    new dockerProvider.DockerProvider(this, "docker", props.dockerHost ? { host: props.dockerHost } : {});
    // The prebuilt bindings were generated from kreuzwerker/docker 3.6.2 and ask for "~> 3.0"; the
    // provider built here is 4.6.0, whose schema keeps every attribute these constructs use.
    this.addOverride("terraform.required_providers.docker", { source: DOCKER_PROVIDER_SOURCE, version: DOCKER_PROVIDER_VERSION });
    new LocalBackend(this, { path: props.statePath });

    this.status = new ReseatStatusFile(this, "status");
    this.processingElements = named.map(({ name, spec }) => new ProcessingElement(this, name, { spec: spec as never, status: this.status }));
  }
}
