// Released reseat versions, built from git for the upgrade test (the build and its cache: buildRelease.sh).
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "./harness";
import { mustRun } from "./userProject";

/** The releases a stack may have been written by, and the commit each was cut from. */
export const RELEASES = [
  { version: "0.3.0", commit: "333b234" },
  { version: "0.4.0", commit: "3c5b877" },
  { version: "0.5.0", commit: "c920dd5" }, // the state library in its own package (@reseat/state), bundled; no writer lock
  { version: "0.6.0", commit: "2d21047" }, // the writer lock, handover "standby"; fleets on Docker only
  { version: "0.7.0", commit: "b037b1a" }, // fleets on Kubernetes; the last release before the plugin package
] as const;

export interface BuiltRelease {
  commit: string;
  version: string;
  /** Its packed tarball, as `npm pack` made it from that commit. */
  tarball: string;
  /** Its own session workload (its state library writes the volume and the store's commits), v1 and v2. */
  sessionImages: { v1: string; v2: string };
}

/** Builds (or finds in the cache) the release cut from `commit`; fails with the build's output. */
export async function buildRelease(commit: string): Promise<BuiltRelease> {
  const ran = await mustRun(ROOT, "bash", [path.join(ROOT, "test", "support", "buildRelease.sh"), commit]);
  const built = JSON.parse(ran.stdout.trim().split("\n").at(-1)!) as BuiltRelease;
  if (!fs.existsSync(built.tarball)) throw new Error(`buildRelease ${commit}: no tarball at ${built.tarball}`);
  return built;
}

/** The image's id: a test must not see a tag turn into another image midway (others rebuild tags). */
export async function imageId(tag: string): Promise<string> {
  return (await mustRun(ROOT, "docker", ["image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
}
