// Drives reseat-powercut-fs (test/support/powercut): a FUSE file system that loses every write not yet
// fsync'd when told to "cut" (built by scripts/build-powercut.sh, which bootstrap.sh runs).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface PowercutFs {
  mountpoint: string;
  /** The power goes: unsynced data and names are lost; each unsynced page survives with probability `keep`. */
  cut(keep?: number): Promise<string>;
  stats(): Promise<string>;
  unmount(): Promise<void>;
}

export function powercutBinary(): string {
  const cache = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
  const binary = path.join(cache, "bin", "reseat-powercut-fs");
  if (!fs.existsSync(binary)) {
    // Same build as bootstrap.sh's (cached): a test run without bootstrap still gets it.
    execFileSync("bash", [path.resolve(__dirname, "../../scripts/build-powercut.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  }
  return binary;
}

export async function mountPowercutFs(mountpoint: string, dirs: string[]): Promise<PowercutFs> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const child: ChildProcess = spawn(powercutBinary(), [mountpoint, ...dirs], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  let pending = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const nextLine = (what: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const queued = lines.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`powercut fs: no answer to ${what} within 30 s; stderr: ${stderr}`)), 30_000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      void exited.then((code) => reject(new Error(`powercut fs exited (${code}) waiting for ${what}: ${stderr}`)));
    });
  const command = async (text: string): Promise<string> => {
    child.stdin!.write(`${text}\n`);
    const answer = await nextLine(text);
    if (!answer.startsWith("ok ")) throw new Error(`powercut fs: ${text} -> ${answer}`);
    return answer;
  };
  const ready = await nextLine("mount");
  if (ready !== "ready") throw new Error(`powercut fs did not mount: ${ready} ${stderr}`);
  return {
    mountpoint,
    cut: (keep = 0) => command(`cut ${keep}`),
    stats: () => command("stats"),
    async unmount() {
      child.stdin!.end();
      const code = await Promise.race([exited, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 30_000))]);
      if (code === "timeout") {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}
