// An extra dockerd started with --bridge=none in this network namespace deletes the machine engine's
// default bridge (docker0) on start-up; scripts/default-bridge.sh explains. The tests' extra engines
// start through this, so the machine's engine keeps its bridge network working.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./harness";

const SCRIPT = path.join(ROOT, "scripts", "default-bridge.sh");

/** Runs `start` (which starts an extra dockerd and waits until it answers), then puts docker0 back if it went. */
export async function keepingDefaultBridge<T>(start: () => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-bridge-"));
  const saved = path.join(dir, "docker0");
  execFileSync("bash", [SCRIPT, "save", saved]);
  try {
    return await start();
  } finally {
    execFileSync("bash", [SCRIPT, "restore", saved], { stdio: ["ignore", "ignore", "inherit"] });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
