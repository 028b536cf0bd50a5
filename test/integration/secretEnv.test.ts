// Issue 19, "secrets stay secret everywhere": a PE whose env holds a secret from `config.requireSecret`.
// A user's project with the plain `pulumi` CLI and reseat installed from its tarball; the real Docker
// Engine. After up the secret is in no label of the container and not in `pulumi stack export`; it is
// in the container's environment (Config.Env), necessarily, and the workload process has it. An
// executable the controller (`reseat watch`) re-creates after a kill -9, and one a failed replacement
// reverts to, run with the real value, though the labels they are re-created from never held it.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS, SECRET_ENV_MARKER } from "../../src/backend/backend";
import { cleanup, docker, runningOf, startController, waitFor } from "../support/harness";
import {
  demoImageIds,
  freePort,
  installReseat,
  mustPulumi,
  outsideFolder,
  packReseat,
  pulumi,
  stackExport,
  stackOutputs,
  type PeSummary,
} from "../support/userProject";

const PE = `it-se-${process.pid}`;
const STACK = "dev";
const TOKEN = `tok-${process.pid}-${Date.now().toString(36)}-never-in-a-label`;

const PROJECT = "name: secretenv\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n";

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");
const config = new pulumi.Config();
const port = config.requireNumber("port");
const pe = new ProcessingElement("${PE}", {
  image: config.require("image"),
  network: "host",
  env: { PORT: String(port), API_TOKEN: config.requireSecret("apiToken") },
  persistentStore: { kind: "none" },
  stop: { graceSeconds: 5 },
  readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
});
exports.pe = pe.summary;
`;

interface Inspected {
  Id: string;
  Name: string;
  Config: { Env: string[]; Labels: Record<string, string>; Image: string };
  State: { Pid: number };
}

function inspect(id: string): Inspected {
  return JSON.parse(execFileSync("docker", ["inspect", id]).toString())[0] as Inspected;
}

/** The workload process's own environment (PID 1 of the container), read inside the container. */
function workloadEnv(id: string): Record<string, string> {
  const text = execFileSync("docker", ["exec", id, "node", "-e", "process.stdout.write(require('fs').readFileSync('/proc/1/environ'))"]).toString();
  return Object.fromEntries(
    text
      .split("\0")
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
}

/** The PE's one running container: the secret in its environment and the workload's, in none of its labels. */
async function expectServingWithSecret(): Promise<Inspected> {
  const running = await runningOf(PE);
  expect(running).toHaveLength(1);
  const container = inspect(running[0]!.Id);
  expect(JSON.stringify(container.Config.Labels)).not.toContain(TOKEN);
  const recorded = JSON.parse(container.Config.Labels[LABELS.desired]!) as { env: Record<string, string>; secretEnv?: string[] };
  expect(recorded.env.API_TOKEN).toBe(SECRET_ENV_MARKER);
  expect(recorded.secretEnv).toEqual(["API_TOKEN"]);
  expect(container.Config.Env).toContain(`API_TOKEN=${TOKEN}`); // Docker has no other place for it
  expect(workloadEnv(container.Id).API_TOKEN).toBe(TOKEN);
  return container;
}

describe("a secret env value stays out of labels and state, and survives re-creation from the label", () => {
  let tarball: string;
  let dir: string;
  let images: { v1: string; v2: string };
  let port: number;

  const summary = async () => (await stackOutputs(dir, STACK)).pe as PeSummary & { executableName: string };

  beforeAll(async () => {
    await cleanup([PE]);
    [tarball, images] = await Promise.all([packReseat(), demoImageIds()]);
    port = await freePort();
    dir = outsideFolder("secret-env");
    await installReseat(dir, tarball);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), PROJECT);
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v1]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "port", String(port)]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "--secret", "apiToken", TOKEN]);
  });

  afterAll(async () => {
    if (dir) await pulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    await cleanup([PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (tarball) fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
  });

  it("up: the workload has the secret; no label of the container holds it; pulumi stack export holds it only encrypted", async () => {
    const up = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    expect(up.stdout + up.stderr).not.toContain(TOKEN);
    const container = await expectServingWithSecret();
    expect(container.Id).toBe((await summary()).executableId);
    const exported = await stackExport(dir, STACK);
    expect(exported).not.toContain(TOKEN);
    const executable = (JSON.parse(exported) as { deployment: { resources: { urn: string; inputs?: Record<string, unknown> }[] } }).deployment.resources.find(
      (r) => r.urn.endsWith(`::${PE}-executable`),
    )!;
    expect(executable.inputs!.secretEnv).toEqual(["API_TOKEN"]);
  });

  it("kill -9 under reseat watch: the executable the controller re-creates from the label has the real value", async () => {
    const before = await summary();
    const controller = startController();
    try {
      await controller.ready;
      await docker.getContainer(before.executableId).kill({ signal: "SIGKILL" });
      await waitFor("the controller's reseat", async () => (controller.events.some((e) => e.kind === "reseated" && e.peId === PE) ? true : undefined), 60_000);
    } finally {
      await controller.stop();
    }
    const again = await expectServingWithSecret();
    expect(again.Name).toBe(`/reseat-${PE}-g${before.generation + 1}`);
    expect(controller.events.filter((e) => e.kind === "reseat-failed" && e.peId === PE)).toEqual([]);
  });

  it("a failed replacement reverts: the previous spec serves again with the real value", async () => {
    const serving = (await runningOf(PE))[0]!;
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", "reseat-crash-at-start:1"]);
    const up = await pulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    expect(up.code).not.toBe(0);
    expect(up.stdout + up.stderr).toMatch(new RegExp(`PE "${PE}" was reverted`));
    expect(up.stdout + up.stderr).not.toContain(TOKEN);
    const reverted = await expectServingWithSecret();
    expect(reverted.Id).not.toBe(serving.Id);
    expect(reverted.Config.Image).toBe(images.v1);
    // Back to the spec that serves: nothing left to change, and still nothing secret in the state.
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v1]);
    const clean = await pulumi(dir, ["preview", "--refresh", "--expect-no-changes", "--stack", STACK]);
    expect(clean.code, clean.stdout.slice(-3000) + clean.stderr.slice(-2000)).toBe(0);
    expect(await stackExport(dir, STACK)).not.toContain(TOKEN);
  });
});
