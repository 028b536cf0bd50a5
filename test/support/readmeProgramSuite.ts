// The lifecycle of one PE declared by the README's program in another language, through the plugin
// package, as a user lives it (issue 20): a fresh folder with nothing of the checkout but the package,
// `add-to-project`, plain `pulumi` with the language's host: up → 100 acknowledged writes → an image
// change previews as exactly one replace (the executable) and no volume step → up keeps every write,
// generation + 1, lastCommit in the outputs → refresh changes nothing; `up --replace` of the executable
// keeps every write → destroy keeps the volume. One suite, run by each language's test file.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, volumeExists } from "./harness";
import { freePort, mustPulumi, previewJson, stackOutputs } from "./userProject";
import { expectedSessions, languageEnv, projectWithPackage, putSessions, sessionImageIds, sessionsOf, workloadVersion } from "./pluginPackage";

export type Language = "python" | "yaml";

/** What the README's programs export as `orders`. */
export type PeOutputs = { peId: string; generation: number; executableId: string; volumeName: string; lastCommit: { seq: number } | null };

const STACK = "dev";

/**
 * Defines the suite. `pkg` is read when the suite runs (the file's beforeAll builds the package);
 * `files(peId)` is the project's files: the README's program with the test's own PE id.
 */
export function readmeProgramSuite(language: Language, peId: string, pkg: () => string, files: (peId: string) => Record<string, string>): void {
  describe(`the README's ${language} program: one PE through reseat's plugin package`, () => {
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let port: number;
    let images: { v1: string; v2: string };
    let first: PeOutputs;
    const url = () => `http://127.0.0.1:${port}`;
    const outputs = async () => (await stackOutputs(dir, STACK, env)).orders as PeOutputs;

    beforeAll(async () => {
      await cleanup([peId]);
      [images, port] = await Promise.all([sessionImageIds(), freePort()]);
      dir = await projectWithPackage(pkg(), language, files(peId));
      env = languageEnv(dir, language);
    });
    afterAll(async () => {
      await cleanup([peId]);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("add-to-project names the package in Pulumi.yaml (Python: the SDK installed into the project's venv)", async () => {
      expect(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")).toContain(`packages:\n  reseat: ${pkg()}\n`);
      const left = fs.readdirSync(dir).filter((f) => ![".pulumi-state", "venv", ...Object.keys(files(peId))].includes(f));
      expect(left).toEqual([]); // nothing half-made of the failed `pulumi package add` (sdks/)
    });

    it("up: the PE runs; 100 writes are acknowledged", async () => {
      await mustPulumi(dir, ["stack", "init", STACK], env);
      await mustPulumi(dir, ["config", "set", "image", images.v1], env);
      await mustPulumi(dir, ["config", "set", "port", String(port)], env);
      await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
      first = await outputs();
      expect(first.peId).toBe(peId);
      expect(first.generation).toBe(1);
      expect(await volumeExists(first.volumeName)).toBe(true);
      expect(await putSessions(url(), 100)).toBe(100);
    });

    it("an image change: preview shows exactly one replace, the executable, and no volume step", async () => {
      await mustPulumi(dir, ["config", "set", "image", images.v2], env);
      const preview = await previewJson(dir, STACK, env);
      expect(preview.changeSummary.replace).toBe(1);
      expect(preview.steps.filter((s) => s.op !== "same").map((s) => s.type)).toEqual(["reseat:index:Executable"]);
      expect(preview.steps.filter((s) => s.type === "reseat:index:StateVolume")).toEqual([]);
    });

    it("up replaces the executable on the kept volume: every write kept, generation + 1, lastCommit in the outputs", async () => {
      await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
      const after = await outputs();
      expect(after.generation).toBe(first.generation + 1);
      expect(after.volumeName).toBe(first.volumeName);
      expect(after.executableId).not.toBe(first.executableId);
      expect(await workloadVersion(url())).toBe("v2");
      expect(await sessionsOf(url())).toEqual(expectedSessions(100));
      // The old executable's final commit (at its graceful stop) holds all 100 writes.
      expect(after.lastCommit?.seq).toBeGreaterThanOrEqual(100);
    });

    it("refresh changes nothing; `pulumi up --replace` of the executable replaces it on the same volume, every write kept", async () => {
      const before = await outputs();
      await mustPulumi(dir, ["refresh", "--yes", "--skip-preview"], env);
      await mustPulumi(dir, ["preview", "--expect-no-changes"], env);
      const exported = JSON.parse((await mustPulumi(dir, ["stack", "export"], env)).stdout) as { deployment: { resources: { type: string; urn: string }[] } };
      const executable = exported.deployment.resources.find((r) => r.type === "reseat:index:Executable")!.urn;
      await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--replace", executable], env);
      const after = await outputs();
      expect(after.generation).toBe(before.generation + 1);
      expect(after.volumeName).toBe(before.volumeName);
      expect(await sessionsOf(url())).toEqual(expectedSessions(100));
      expect(await containersOf(peId, false)).toHaveLength(1);
    });

    it("destroy removes the executable and keeps the volume", async () => {
      await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
      expect(await containersOf(peId)).toEqual([]);
      expect(await volumeExists(first.volumeName)).toBe(true);
    });
  });
}
