// The Terraform flavour's synthesized JSON (cdktf runs in-process; no OpenTofu, no engine).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { ReseatTerraformStack, literal } from "../../../components/terraform";
import { DockerBackend } from "../../../src/backend/docker/dockerBackend";
import { LABELS } from "../../../src/backend/backend";
import { executableDesired } from "../../../src/schema/desired";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { synthesize } from "../../../stacks/terraform/main";

interface Synth {
  resource: Record<string, Record<string, Record<string, unknown>>>;
  output: Record<string, { value: Record<string, unknown> }>;
  terraform: { required_providers: Record<string, { source: string; version: string }>; backend: Record<string, { path: string }> };
  locals: Record<string, string>;
  variable: Record<string, { default: string }>;
}

const demo = {
  peId: "orders",
  image: "reseat-demo-workload:v1",
  network: "host",
  env: { PORT: "18080" },
  commitInterval: "5s",
  stop: { signal: "SIGINT", graceSeconds: 7 },
};

function synth(specs: unknown[]): Synth {
  const stack = new ReseatTerraformStack(Testing.app(), "test", { processingElements: specs, statePath: "/tmp/reseat-test.tfstate" });
  return JSON.parse(Testing.synth(stack)) as Synth;
}

function labelsOf(resource: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries((resource.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]));
}

describe("Terraform flavour: synthesized configuration", () => {
  it("the state volume: prevent_destroy, the PE identity labels, name and driver from the spec", () => {
    const doc = synth([demo]);
    const volume = doc.resource.docker_volume!.pe_orders_state!;
    expect(volume.lifecycle).toEqual({ prevent_destroy: true });
    expect(volume.name).toBe("reseat-orders-state");
    expect(volume.driver).toBe("local");
    expect(labelsOf(volume)).toEqual({ [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: "orders" });
  });

  it("volume.retainOnDestroy: false lifts prevent_destroy; volume.name is honoured", () => {
    const doc = synth([{ ...demo, volume: { name: "orders-data", retainOnDestroy: false } }]);
    const volume = doc.resource.docker_volume!.pe_orders_state!;
    expect(volume.lifecycle).toEqual({ prevent_destroy: false });
    expect(volume.name).toBe("orders-data");
  });

  it("the image: keep_locally, the spec's reference (found locally by the provider, never pulled when present)", () => {
    const image = synth([demo]).resource.docker_image!.pe_orders!;
    expect(image).toMatchObject({ name: "reseat-demo-workload:v1", keep_locally: true });
  });

  it("the container: replace_triggered_by the image and the replacing fields, bare addresses", () => {
    const doc = synth([demo]);
    const container = doc.resource.docker_container!.pe_orders!;
    expect(container.lifecycle).toEqual({ replace_triggered_by: ["docker_image.pe_orders", "terraform_data.pe_orders_spec"] });
    expect(container.image).toBe("${docker_image.pe_orders.image_id}");
    expect(container.depends_on).toEqual(["docker_volume.pe_orders_state"]);
    // The record of replacing fields: a change of any of them (memory included) replaces the container.
    const spec = doc.resource.terraform_data!.pe_orders_spec!;
    expect(Object.keys(spec.input as object).sort()).toEqual([
      "command",
      "env",
      "mountPath",
      "network",
      "peId",
      "ports",
      "resources",
      "store",
      "user",
      "volumeName",
    ]);
  });

  it("the container is bound to the state volume at the mount path, and to the directory store at /reseat-store", () => {
    const container = synth([{ ...demo, volume: { mountPath: "/data/orders" } }]).resource.docker_container!.pe_orders!;
    expect(container.mounts).toEqual([
      { type: "volume", source: "${docker_volume.pe_orders_state.name}", target: "/data/orders" },
      { type: "volume", source: "reseat-store", target: "/reseat-store" },
    ]);
    const bind = synth([{ ...demo, persistentStore: { kind: "directory", hostPath: "/srv/commits" } }]).resource.docker_container!.pe_orders!;
    expect((bind.mounts as unknown[])[1]).toEqual({ type: "bind", source: "/srv/commits", target: "/reseat-store" });
    const none = synth([{ ...demo, persistentStore: { kind: "none" } }]).resource.docker_container!.pe_orders!;
    expect(none.mounts as unknown[]).toHaveLength(1);
    expect((none.env as string[]).some((e) => e.startsWith("RESEAT_STORE="))).toBe(false);
  });

  it("labels, env, stop, restart, network and mounts are the ones the Docker backend gives the Pulumi flavour's executable", async () => {
    const parsed = parseProcessingElement({
      ...demo,
      network: "bridge",
      ports: [{ container: 8080, host: 18080 }],
      resources: { memoryMiB: 64, cpus: 0.5 },
      command: ["node", "server.js"],
    });
    // What DockerBackend.prepare sends to the engine for the same spec (engine call captured).
    const backend = new DockerBackend();
    let body: Record<string, any> = {};
    (backend.docker as unknown as { createContainer: unknown }).createContainer = async (options: Record<string, unknown>) => {
      body = options;
      return { id: "captured" };
    };
    await backend.prepare(executableDesired(parsed, "sha256:0000"), { name: "reseat-orders-g1", generation: 1, specHash: "hash" });

    const container = synth([
      { ...demo, network: "bridge", ports: [{ container: 8080, host: 18080 }], resources: { memoryMiB: 64, cpus: 0.5 }, command: ["node", "server.js"] },
    ]).resource.docker_container!.pe_orders!;
    const pulumiLabels = { ...body.Labels } as Record<string, string>;
    delete pulumiLabels[LABELS.specHash];
    delete pulumiLabels[LABELS.desired];
    // OpenTofu replaces the container itself: the Terraform flavour has no generation to carry.
    delete pulumiLabels[LABELS.generation];
    expect(labelsOf(container)).toEqual({ ...pulumiLabels, "io.reseat.flavour": "terraform" });
    expect([...(container.env as string[])].sort()).toEqual([...(body.Env as string[])].filter((e) => !e.startsWith("RESEAT_GENERATION=")).sort());
    expect(container.command).toEqual(body.Cmd);
    expect(container.stop_signal).toBe(body.StopSignal);
    expect(container.stop_timeout).toBe(body.StopTimeout);
    expect(container.destroy_grace_seconds).toBe(body.StopTimeout);
    expect(container.restart).toBe(body.HostConfig.RestartPolicy.Name);
    expect(container.restart).toBe("no");
    expect(container.network_mode).toBe(body.HostConfig.NetworkMode);
    expect(container.memory).toBe(body.HostConfig.Memory / 1024 / 1024);
    expect(Number(container.cpus) * 1e9).toBe(body.HostConfig.NanoCpus);
    expect(container.ports).toEqual([{ internal: 8080, external: 18080, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(body.HostConfig.PortBindings).toEqual({ "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "18080" }] });
    const mounts = container.mounts as { type: string; source: string; target: string }[];
    expect(mounts.map((m) => [m.type, m.target])).toEqual((body.HostConfig.Mounts as { Type: string; Target: string }[]).map((m) => [m.Type, m.Target]));
    expect(container.remove_volumes).toBe(false);
    expect(container.must_run).toBe(true);
  });

  it("the env carries RESEAT_PE_ID, RESEAT_STATE_DIR, RESEAT_COMMIT_INTERVAL_MS and RESEAT_STORE", () => {
    const env = synth([demo]).resource.docker_container!.pe_orders!.env as string[];
    expect(env).toEqual(
      expect.arrayContaining([
        "PORT=18080",
        "RESEAT_PE_ID=orders",
        "RESEAT_STATE_DIR=/state",
        "RESEAT_COMMIT_INTERVAL_MS=5000",
        `RESEAT_STORE=${JSON.stringify({ kind: "directory", path: "/reseat-store", keep: 5 })}`,
      ]),
    );
  });

  it("ports are published only with network bridge, as in the Pulumi flavour", () => {
    const host = synth([{ ...demo, ports: [{ container: 8080, host: 18080 }] }]).resource.docker_container!.pe_orders!;
    expect(host.ports).toBeUndefined();
    expect(host.network_mode).toBe("host");
  });

  it("template syntax in users' strings is escaped, so it reaches the engine literally", () => {
    expect(literal("a${b}c%{d}")).toBe("a$${b}c%%{d}");
    const container = synth([{ ...demo, env: { PORT: "18080", GREETING: "hello ${USER}" } }]).resource.docker_container!.pe_orders!;
    expect(container.env).toContain("GREETING=hello $${USER}");
  });

  it("outputs pe_<peId>: peId, volume name, commit interval, and the status fields read from the status file", () => {
    const doc = synth([demo]);
    const value = doc.output.pe_orders!.value;
    expect(value).toMatchObject({
      peId: "orders",
      volumeName: "${docker_volume.pe_orders_state.name}",
      commitIntervalMs: 5000,
      executableName: "${docker_container.pe_orders.name}",
      statusFile: "${local.reseat_status_path}",
    });
    for (const field of ["generation", "lastCommit", "commitLagMs", "resumedFrom"]) {
      expect(value[field]).toBe(`\${try(one([for row in local.reseat_status_rows : row if try(row.peId, "") == "orders"]).${field}, null)}`);
    }
    expect(doc.locals.reseat_status_rows).toContain("jsondecode(fileexists(local.reseat_status_path)");
    expect(doc.variable.reseat_status_file).toMatchObject({ default: "" });
  });

  it("pins kreuzwerker/docker 4.x (the bindings were generated from 3.6.2) and a local backend", () => {
    const doc = synth([demo]);
    expect(doc.terraform.required_providers.docker).toEqual({ source: "kreuzwerker/docker", version: "~> 4.6" });
    expect(doc.terraform.backend.local).toEqual({ path: "/tmp/reseat-test.tfstate" });
  });

  it("one construct per PE; a PE id declared twice is refused", () => {
    const doc = synth([demo, { ...demo, peId: "billing", env: { PORT: "18090" } }]);
    expect(Object.keys(doc.resource.docker_container!).sort()).toEqual(["pe_billing", "pe_orders"]);
    expect(() => synth([demo, demo])).toThrow(
      /processingElements\[1\]\.peId: expected a peId unique in the program; "orders" is already used by processingElements\[0\]/,
    );
  });

  it("stacks/terraform/main.ts synthesizes <outdir>/stacks/<stack>/cdk.tf.json from a stack config file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tf-synth-"));
    try {
      const configFile = path.join(dir, "stack.json");
      fs.writeFileSync(configFile, JSON.stringify({ processingElements: [demo] }));
      const result = synthesize({ stack: "unit", configFile, outdir: path.join(dir, "out"), statePath: path.join(dir, "unit.tfstate") });
      expect(result.file).toBe(path.join(dir, "out", "stacks", "unit", "cdk.tf.json"));
      const doc = JSON.parse(fs.readFileSync(result.file, "utf8")) as Synth;
      expect(doc.resource.docker_volume!.pe_orders_state!.lifecycle).toEqual({ prevent_destroy: true });
      expect(doc.terraform.backend.local).toEqual({ path: path.join(dir, "unit.tfstate") });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the bundled local stack config synthesizes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tf-synth-"));
    try {
      const result = synthesize({ stack: "local", outdir: dir, statePath: path.join(dir, "local.tfstate") });
      const doc = JSON.parse(fs.readFileSync(result.file, "utf8")) as Synth;
      expect(Object.keys(doc.output)).toEqual(["pe_tfdemo"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
