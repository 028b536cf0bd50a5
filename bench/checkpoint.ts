// The size of a bench stack's Pulumi checkpoint (the scale benches' "checkpoint per member"): shared by the
// Docker and Kubernetes sections of `npm run bench -- scale`.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { round } from "./results";

const execFileAsync = promisify(execFile);

/** The checkpoint file's size (the export's compact size where there is no file). */
export function storedBytes(checkpoint: { checkpointFileBytes: number | null; compactBytes: number }): number {
  return checkpoint.checkpointFileBytes ?? checkpoint.compactBytes;
}

/** `pulumi stack export` of the bench stack: its size, the checkpoint file's, and a breakdown per resource type. */
export async function checkpointSize(dir: string, n: number) {
  const { stdout } = await execFileAsync("pulumi", ["stack", "export", "--stack", "bench", "--cwd", dir, "--non-interactive"], {
    maxBuffer: 1 << 30,
    env: process.env,
  });
  const exportBytes = Buffer.byteLength(stdout);
  const doc = JSON.parse(stdout) as { deployment?: { resources?: { type: string }[] } };
  const byType: Record<string, { count: number; bytes: number; bytesPerMember: number }> = {};
  for (const resource of doc.deployment?.resources ?? []) {
    const entry = (byType[resource.type] ??= { count: 0, bytes: 0, bytesPerMember: 0 });
    entry.count++;
    entry.bytes += Buffer.byteLength(JSON.stringify(resource));
  }
  for (const entry of Object.values(byType)) entry.bytesPerMember = round(entry.bytes / n);
  const file = checkpointFile(dir);
  return {
    exportBytes,
    compactBytes: Buffer.byteLength(JSON.stringify(doc)),
    checkpointFileBytes: file ? fs.statSync(file).size : null,
    resources: doc.deployment?.resources?.length ?? 0,
    byType,
  };
}

/** The file backend's checkpoint of the `bench` stack (the file Pulumi rewrites after every step). */
export function checkpointFile(dir: string): string | undefined {
  const stacks = path.join(dir, ".pulumi-state", ".pulumi", "stacks");
  const walk = (d: string): string | undefined => {
    if (!fs.existsSync(d)) return undefined;
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (entry.name === "bench.json") return p;
    }
    return undefined;
  };
  return walk(stacks);
}
