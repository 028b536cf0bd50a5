// The Terraform flavour of a processing element: a cdktf construct over the kreuzwerker/docker
// provider that takes THE SAME spec as the Pulumi component (validated by the same zod schema, so an
// invalid spec fails synth with the same SpecError lines) and synthesizes:
//
//   docker_image      the image, keep_locally = true (never removed; a local-only image is found by
//                     the provider's ImageInspect and never pulled)
//   docker_volume     the state volume: PE identity labels, lifecycle.prevent_destroy (unless the
//                     spec says volume.retainOnDestroy: false)
//   terraform_data    the fields whose change needs a new executable (built in, no provider)
//   docker_container  the executable: bound to the volume at volume.mountPath, the same labels and
//                     workload env as the Pulumi flavour (the contract's), stop signal/grace, restart "no", network,
//                     ports; lifecycle.replace_triggered_by = [image, spec], so a new image replaces
//                     the container (destroy, then create) and never the volume
//
// Nothing in this folder imports Pulumi, and nothing outside components/terraform and stacks/terraform
// imports cdktf: the shared part is src/schema (schema, desired) and src/backend (labels, store env).
// Moving to CDK Terrain (the community fork after HashiCorp deprecated cdktf on 2025-12-10) means
// changing the imports of this folder and stacks/terraform/main.ts, and the package names.
import { Construct } from "constructs";
import { DataResource, TerraformOutput, TerraformResource } from "cdktf";
import { container as dockerContainer, image as dockerImage, provider as dockerProvider, volume as dockerVolume } from "@cdktf/provider-docker";
import { STORE_MOUNT, storeEnv, workloadEnvironment } from "@reseat/state/contract";
import { LABELS } from "../../src/backend/backend";
import { executableFields, storeDesired } from "../../src/schema/desired";
import { ProcessingElementInput, ProcessingElementSpec, SpecError, parseProcessingElement, volumeNameOf } from "../../src/schema/processingElement";
import { REPLACE_FIELDS } from "../../src/plan/executablePlan";
import { ReseatStatusFile, STATUS_FIELDS } from "./status";

/** The kreuzwerker/docker release this flavour is built and tested against (scripts/build-terraform.sh). */
export const DOCKER_PROVIDER_SOURCE = "kreuzwerker/docker";
export const DOCKER_PROVIDER_VERSION = "~> 4.6";

/** The executable's container name. OpenTofu replaces it destroy-then-create, so one name suffices. */
export function terraformExecutableName(peId: string): string {
  return `reseat-${peId}-tf`;
}

/** Terraform resource names for a PE (a PE id may start with a digit; Terraform names may not). */
export function resourceName(peId: string, suffix = ""): string {
  return `pe_${peId}${suffix}`;
}

/** Validates a spec exactly as the Pulumi component does (`peId` defaults to the construct id). */
export function validateTerraformProcessingElement(name: string, args: unknown): ProcessingElementSpec {
  const withDefaultId = args && typeof args === "object" && !Array.isArray(args) && !("peId" in args) ? { ...args, peId: name } : args;
  const spec = parseProcessingElement(withDefaultId, `"${name}"`);
  if (spec.persistentStore.kind === "postgres") {
    // The password reaches the workload only as a file in the state volume, which the Pulumi provider
    // writes before the first start; the docker provider has no step for that here.
    throw new SpecError(`"${name}"`, [
      {
        field: "persistentStore.kind",
        expected: 'expected "directory" or "none" in the Terraform flavour (postgres needs the Pulumi flavour, which writes the password file into the volume)',
      },
    ]);
  }
  if (spec.docker) {
    throw new SpecError(`"${name}"`, [
      { field: "docker", expected: "not set per PE in the Terraform flavour: the engine is the stack's (dockerHost / DOCKER_HOST)" },
    ]);
  }
  if (spec.kubernetes) {
    throw new SpecError(`"${name}"`, [
      { field: "kubernetes", expected: "not supported by the Terraform flavour (Docker only): use the Pulumi flavour for PEs on Kubernetes" },
    ]);
  }
  if (spec.handover === "standby") {
    // OpenTofu replaces the container destroy-then-create: nothing could start a successor beside the old one.
    throw new SpecError(`"${name}"`, [
      { field: "handover", expected: 'expected "staged" in the Terraform flavour (it replaces destroy-then-create): "standby" needs the Pulumi flavour' },
    ]);
  }
  return spec;
}

/** Environment of the executable: the spec's env, then reseat's (the same as the Docker backend sets). */
export function executableEnv(spec: ProcessingElementSpec): Record<string, string> {
  // No generation: the Terraform flavour has no replacement routine; the workload reads meta as 0.4 did.
  return workloadEnvironment({
    env: spec.env,
    peId: spec.peId,
    stateDir: spec.volume.mountPath,
    commitIntervalMs: spec.commitInterval,
    store: storeEnv(storeDesired(spec), spec.volume.mountPath),
  });
}

export interface ProcessingElementProps {
  /** A PE spec, exactly as the Pulumi component and stack config take it (see the README's table). */
  readonly spec: Omit<ProcessingElementInput, "peId"> & { peId?: string };
  /** The stack's status file (see ReseatStatusFile); without it the status outputs are null. */
  readonly status?: ReseatStatusFile;
  /** The docker provider to use; default: the stack's default provider. */
  readonly provider?: dockerProvider.DockerProvider;
  /** Emit the output `pe_<peId>`; default true. */
  readonly output?: boolean;
}

export class ProcessingElement extends Construct {
  readonly spec: ProcessingElementSpec;
  readonly image: dockerImage.Image;
  readonly volume: dockerVolume.Volume;
  readonly replaceFields: DataResource;
  readonly container: dockerContainer.Container;
  /** What `pe_<peId>` holds: identity and configuration from here, commit status from the status file. */
  readonly outputs: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: ProcessingElementProps) {
    super(scope, id);
    const spec = validateTerraformProcessingElement(id, props.spec);
    this.spec = spec;
    const peId = spec.peId;
    const volumeName = volumeNameOf(spec);
    const provider = props.provider;

    this.image = new dockerImage.Image(this, "image", {
      provider,
      name: spec.image,
      // Removing the resource (e.g. on a new image) must not delete an image from the engine.
      keepLocally: true,
    });
    this.image.overrideLogicalId(resourceName(peId));

    this.volume = new dockerVolume.Volume(this, "state", {
      provider,
      name: volumeName,
      driver: spec.volume.driver,
      labels: labelList({ [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: peId }),
      lifecycle: { preventDestroy: spec.volume.retainOnDestroy },
    });
    this.volume.overrideLogicalId(resourceName(peId, "_state"));

    // The Pulumi flavour replaces the executable when any of REPLACE_FIELDS changes. Most of them are
    // ForceNew on docker_container anyway; `memory` is not, so this record of the fields (minus the
    // image id, which docker_image carries) triggers the replacement for all of them alike.
    const fields = executableFields(spec);
    const store = storeDesired(spec);
    const replaceInput = Object.fromEntries(
      // handover: always staged here (validateTerraformProcessingElement), so recorded stacks see no change.
      REPLACE_FIELDS.filter((field) => field !== "imageId" && field !== "kubernetes" && field !== "handover").map((field) => [
        field,
        literal(JSON.stringify(field === "store" ? store : ((fields as Record<string, unknown>)[field] ?? null))),
      ]),
    );
    this.replaceFields = new DataResource(this, "spec", { input: replaceInput });
    this.replaceFields.overrideLogicalId(resourceName(peId, "_spec"));

    const mounts: dockerContainer.ContainerMounts[] = [{ type: "volume", source: this.volume.name, target: literal(spec.volume.mountPath) }];
    if (store.kind === "directory") {
      mounts.push(
        store.hostPath
          ? { type: "bind", source: literal(store.hostPath), target: STORE_MOUNT }
          : { type: "volume", source: store.volume ?? "reseat-store", target: STORE_MOUNT },
      );
    }
    const env = executableEnv(spec);

    this.container = new dockerContainer.Container(this, "executable", {
      provider,
      name: terraformExecutableName(peId),
      image: this.image.imageId,
      command: spec.command?.map(literal),
      // The image's USER applies otherwise (a new named volume takes the owner of the image's mount path).
      user: fields.user ? `${fields.user.uid}:${fields.user.gid}` : undefined,
      env: Object.entries(env)
        .map(([key, value]) => literal(`${key}=${value}`))
        .sort(),
      labels: labelList({
        [LABELS.managed]: "true",
        [LABELS.role]: "executable",
        [LABELS.peId]: peId,
        [LABELS.volume]: volumeName,
        "io.reseat.image": spec.image,
        "io.reseat.flavour": "terraform",
      }),
      mounts,
      stopSignal: spec.stop.signal,
      stopTimeout: spec.stop.graceSeconds,
      // The docker provider kills at once on destroy unless told to stop first: give the workload its
      // grace (and so its final commit on SIGTERM), as the Pulumi flavour does.
      destroyGraceSeconds: spec.stop.graceSeconds,
      // reseat is the restart policy; the engine must not restart an executable behind its back.
      restart: "no",
      mustRun: true,
      // As the Docker backend (v=false): removing the executable leaves every volume alone.
      removeVolumes: false,
      networkMode: spec.network,
      ports:
        spec.network === "bridge"
          ? spec.ports.map((p) => ({ internal: p.container, ...(p.host ? { external: p.host } : {}), ip: p.hostIp, protocol: p.protocol }))
          : undefined,
      memory: spec.resources.memoryMiB,
      cpus: spec.resources.cpus === undefined ? undefined : String(spec.resources.cpus),
      dependsOn: [this.volume],
    });
    this.container.overrideLogicalId(resourceName(peId));
    // A new image, or a change of any replacing field, replaces the container (and only it). Set as a
    // raw override: cdktf writes replace_triggered_by entries as "${docker_image.x}" templates, which
    // OpenTofu rejects there ("Invalid character"); the JSON syntax wants bare references.
    this.container.addOverride("lifecycle.replace_triggered_by", [address(this.image), address(this.replaceFields)]);

    const row = props.status?.rowExpression(peId);
    const fromStatus = (field: string) => (row ? `\${try(${row}.${field}, null)}` : null);
    this.outputs = {
      peId,
      volumeName: this.volume.name,
      commitIntervalMs: spec.commitInterval,
      executableName: this.container.name,
      executableId: this.container.id,
      imageId: this.image.imageId,
      ...Object.fromEntries(STATUS_FIELDS.map((field) => [field, fromStatus(field)])),
      statusFile: props.status ? "${local.reseat_status_path}" : null,
    };
    if (props.output ?? true) {
      new TerraformOutput(this, "outputs", { value: this.outputs }).overrideLogicalId(resourceName(peId));
    }
  }
}

/**
 * A user's string as a Terraform literal: Terraform reads "${" and "%{" in any string of a JSON
 * configuration as template syntax, so they are escaped ("$${", "%%{") and reach the engine as written.
 */
export function literal(value: string): string {
  return value.replace(/\$\{/g, "$$${").replace(/%\{/g, "%%{");
}

/** The bare address of a resource (e.g. docker_image.pe_demo), as lifecycle arguments want it. */
function address(resource: TerraformResource): string {
  return `${resource.terraformResourceType}.${resource.friendlyUniqueId}`;
}

function labelList(labels: Record<string, string>): { label: string; value: string }[] {
  return Object.entries(labels).map(([label, value]) => ({ label, value }));
}
