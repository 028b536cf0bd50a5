// Issue 10: a stack written by the release before portable state — its dynamic providers name their
// runtime by absolute path (<project>/node_modules/reseat/dist/src/provider/runtime.js). Moved to
// another folder (the first deleted), it cannot be refreshed; one `up` of the new release rewrites the
// record (an in-place update per resource: no restart), and the stack then survives the next move.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanup, containersOf, demoSpec, httpJson, volumeExists } from "../support/harness";
import {
  copyProject,
  freePort,
  installReseat,
  mustPulumi,
  mustRun,
  outsideFolder,
  pulumi,
  packReseat,
  previewJson,
  reinstall,
  stackExport,
  stackOutputs,
  userEnv,
  type PeSummary,
  type StateView,
} from "../support/userProject";

/** The last commit whose providers stored an absolute runtime path ("today's release" for issue 10). */
const LEGACY_RELEASE = "83b97d6";
const PE = `it-mig-${process.pid}`;
const STACK = "mig";
interface Deployment {
  deployment: { resources: { type: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[] };
}

/** The legacy release, compiled from git (the checkout's node_modules lent for the compiler). */
async function buildLegacyRelease(): Promise<string> {
  const dir = outsideFolder("legacy");
  await mustRun(ROOT, "bash", ["-c", `git archive ${LEGACY_RELEASE} | tar -x -C "${dir}"`]);
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  // Only what the CLI and its bundled program need, not the benches and the Terraform flavour.
  fs.writeFileSync(
    path.join(dir, "tsconfig.cli.json"),
    JSON.stringify({ extends: "./tsconfig.json", include: [], files: ["src/cli/main.ts", "stacks/index.ts"] }),
  );
  await mustRun(dir, process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.cli.json"]);
  fs.rmSync(path.join(dir, "node_modules"));
  return dir;
}

/**
 * The demo images run as a non-root USER since 0.2; the legacy release wrote into the volume as root only,
 * as it did for the root images its users ran. So the stack runs root variants of the same images.
 */
async function rootImageIds(): Promise<{ v1: string; v2: string }> {
  const ids = { v1: "", v2: "" };
  for (const version of ["v1", "v2"] as const) {
    const tag = `reseat-demo-workload:${version}-root`;
    const dockerfile = path.join(outsideFolder(`root-image-${version}`), "Dockerfile");
    fs.writeFileSync(dockerfile, `FROM reseat-demo-workload:${version}\nUSER 0:0\n`);
    await mustRun(path.dirname(dockerfile), "docker", ["build", "-q", "-t", tag, "."], { ...process.env, DOCKER_BUILDKIT: "0" });
    ids[version] = (await mustRun(ROOT, "docker", ["image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
    fs.rmSync(path.dirname(dockerfile), { recursive: true, force: true });
  }
  return ids;
}

function dynamicResources(exported: string): Deployment["deployment"]["resources"] {
  return (JSON.parse(exported) as Deployment).deployment.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/reseat"));
}

describe("a stack written by the release that stored absolute runtime paths", () => {
  let project: string;
  let legacy: string;
  let tarball: string;
  let port: number;
  let before: PeSummary;
  let images: { v1: string; v2: string };

  beforeAll(async () => {
    await cleanup([PE]);
    port = await freePort();
    [legacy, tarball, images] = await Promise.all([buildLegacyRelease(), packReseat(), rootImageIds()]);
    project = outsideFolder("migrate");
  });
  afterAll(async () => {
    await cleanup([PE]);
    for (const dir of [legacy, path.dirname(tarball)]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the legacy release, installed in the project, deploys with its reseat CLI: the state names its runtime by path", async () => {
    await installReseat(project, tarball); // @pulumi/pulumi, pg, zod: the dependencies both releases share
    const installed = path.join(project, "node_modules", "reseat");
    fs.rmSync(installed, { recursive: true });
    fs.mkdirSync(installed);
    for (const entry of ["package.json", "dist"]) fs.cpSync(path.join(legacy, entry), path.join(installed, entry), { recursive: true });
    // A project of the legacy kind: the reseat CLI's bundled program, PEs in the stack config.
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: migrate\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nstackConfigDir: stacks\n");
    fs.mkdirSync(path.join(project, "stacks"));
    fs.writeFileSync(
      path.join(project, "stacks", `Pulumi.${STACK}.yaml`),
      JSON.stringify({ config: { "reseat:processingElements": [demoSpec(PE, port, { image: images.v1 })] } }),
    );
    const up = await mustRun(
      project,
      process.execPath,
      [path.join(installed, "dist", "src", "cli", "main.js"), "up", "--cwd", project, "--stack", STACK, "--json"],
      userEnv(project),
    );
    before = (JSON.parse(up.stdout) as { outputs: { processingElements: Record<string, PeSummary> } }).outputs.processingElements[PE]!;
    expect(before.generation).toBe(1);
    for (const line of ["old-1", "old-2"]) await httpJson(port, `/append?line=${line}`, "POST");
    const runtimePath = path.join(installed, "dist", "src", "provider", "runtime.js");
    for (const resource of dynamicResources(await stackExport(project, STACK))) {
      expect(resource.outputs.__provider).toContain(runtimePath);
      expect(resource.outputs.engineIdentity).toBeUndefined();
    }
  });

  it("moved to another runner with the new release installed, the stack cannot be refreshed: the old path is gone", async () => {
    const moved = outsideFolder("moved");
    copyProject(project, moved);
    fs.rmSync(project, { recursive: true, force: true });
    await reinstall(moved); // the new release, from the lock file (package.json names the tarball)
    const refresh = await pulumi(moved, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    expect(refresh.code).not.toBe(0);
    expect(refresh.stdout + refresh.stderr).toContain(
      `Cannot find module '${path.join(project, "node_modules", "reseat", "dist", "src", "provider", "runtime.js")}'`,
    );
    project = moved;
  });

  it("one plain pulumi up of the new release rewrites the record in place: no replacement, no restart, no path left", async () => {
    // The project now runs the installed package's bundled program with plain `pulumi up`.
    fs.appendFileSync(path.join(project, "Pulumi.yaml"), "main: node_modules/reseat/dist/stacks/index.js\n");
    const preview = await previewJson(project, STACK);
    expect(preview.changeSummary.update).toBe(2);
    expect(Object.keys(preview.changeSummary).sort()).toEqual(["same", "update"]);
    await mustPulumi(project, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const migrated = dynamicResources(await stackExport(project, STACK));
    expect(migrated).toHaveLength(2);
    for (const resource of migrated) {
      for (const record of [resource.inputs, resource.outputs]) {
        expect(record.__provider).toContain("reseat/provider/runtime");
        expect(record.__provider).not.toContain("/dist/src/provider/runtime");
        expect((record.engineIdentity as { kind: string }).kind).toBe("docker");
      }
    }
    const running = await containersOf(PE, false);
    expect(running.map((c) => c.Id)).toEqual([before.executableId]);
    expect(((await stackOutputs(project, STACK)).processingElements as Record<string, PeSummary>)[PE]!.generation).toBe(1);
    expect((await httpJson<StateView>(port, "/state")).lines).toEqual(["old-1", "old-2"]);
  });

  it("then survives the next move: replace, refresh and destroy work from a third folder", async () => {
    const moved = outsideFolder("migrated");
    copyProject(project, moved);
    fs.rmSync(project, { recursive: true, force: true });
    await reinstall(moved);
    expect(await stackExport(moved, STACK)).not.toContain(project);

    const config = path.join(moved, "stacks", `Pulumi.${STACK}.yaml`);
    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace(images.v1, images.v2));
    await mustPulumi(moved, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const after = ((await stackOutputs(moved, STACK)).processingElements as Record<string, PeSummary>)[PE]!;
    expect(after.generation).toBe(2);
    expect(after.volumeName).toBe(before.volumeName);
    const state = await httpJson<StateView>(port, "/state");
    expect(state.version).toBe("v2");
    expect(state.lines).toEqual(["old-1", "old-2"]);

    await mustPulumi(moved, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    await mustPulumi(moved, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await containersOf(PE)).toEqual([]);
    expect(await volumeExists(before.volumeName)).toBe(true);
    fs.rmSync(moved, { recursive: true, force: true });
  });
});
