// Issue 14: acknowledged writes survive power loss. The workload's state directory and its directory store
// live on reseat-powercut-fs, a FUSE file system that loses every write not yet fsync'd when the test cuts the
// power (and, in half of the cuts, keeps a random part of the unsynced pages, as a kernel's writeback may have).
// 200 cuts at random moments under write load (startup, restore, writes, commits, checkpoints, pruning), with
// the workload as a plain Node process on the state library; then cuts through a real container.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DirectoryStore } from "../../packages/state/src/store/directoryStore";
import { inspectDatabaseFile } from "../../packages/state/src/dbFile";
import { docker, ROOT } from "../support/harness";
import { mountPowercutFs, type PowercutFs } from "../support/powercutFs";
import { compileStateLibrary } from "../unit/state/childProcess";

const CUTS = Number(process.env.RESEAT_POWER_CUTS ?? 200);
/** Every this many cuts the volume is lost too (only the store is left). */
const VOLUME_LOSS_EVERY = 9;
const WORKLOAD = path.join(ROOT, "test", "support", "powercut", "workload.js");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-powercut-"));
const mountpoint = path.join(work, "mnt");
let powercut: PowercutFs;
let library = "";

/** The value workload.js writes for key <prefix>-<n>. */
function valueOf(key: string): unknown {
  const n = Number(key.slice(key.lastIndexOf("-") + 1));
  return { n, pad: "p".repeat(n % 50 === 0 ? 5000 + (n % 7) * 500 : n % 300) };
}

interface Run {
  child: ChildProcess;
  lines: string[];
  acks: Array<{ key: string; seq: number }>;
  exited: Promise<void>;
  stderr: () => string;
  line(prefix: string, timeoutMs?: number): Promise<string | undefined>;
}

function startWorkload(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [WORKLOAD, library], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const acks: Run["acks"] = [];
  let stderr = "";
  let pending = "";
  let exitedFlag = false;
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      if (line.startsWith("ack ")) {
        const [, key, seq] = line.split(" ");
        acks.push({ key: key!, seq: Number(seq) });
      } else lines.push(line);
    }
    for (const notify of listeners) notify();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exitedFlag = true;
      for (const notify of listeners) notify();
      resolve();
    }),
  );
  return {
    child,
    lines,
    acks,
    exited,
    stderr: () => stderr,
    /** The first line starting with `prefix`, or undefined once the process exited without it. */
    line(prefix, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const look = () => {
          const found = lines.find((line) => line.startsWith(prefix));
          if (found !== undefined || exitedFlag) {
            listeners.delete(look);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(look);
          reject(new Error(`no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        listeners.add(look);
        look();
      });
    },
  };
}

/** fsync a directory (here: to make a deletion durable). */
function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

beforeAll(async () => {
  library = await compileStateLibrary(path.join(work, "library"));
  powercut = await mountPowercutFs(mountpoint, ["state", "store", "containers"]);
});

afterAll(async () => {
  await powercut?.unmount();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("power loss", () => {
  it(
    `${CUTS} power cuts at random moments under write load: no acknowledged write lost, no corrupt restore`,
    async () => {
      const stateDir = path.join(mountpoint, "state", "volume");
      const storeDir = path.join(mountpoint, "store");
      const expectFile = path.join(work, "expected.json");
      /** Every acknowledged write that must be there: key -> seq. */
      const expected = new Map<string, number>();
      const tally = {
        acked: 0,
        lostAcked: 0,
        wrongValues: 0,
        integrityFailures: 0,
        local: 0,
        restores: 0,
        emptyStarts: 0,
        volumeLosses: 0,
        cutsBeforeReady: 0,
        keptPages: 0,
      };
      const verifyStart = async (run: Run): Promise<void> => {
        const integrity = (await run.line("integrity"))?.slice("integrity ".length);
        const ready = await run.line("ready");
        const check = await run.line("check");
        if (integrity === undefined || ready === undefined || check === undefined) throw new Error(`workload exited before its checks: ${run.stderr()}`);
        if (integrity !== "ok" && integrity !== "none") tally.integrityFailures++;
        const resumedFrom = ready.split(" ")[1];
        tally[resumedFrom === "local" ? "local" : resumedFrom === "persistent" ? "restores" : "emptyStarts"]++;
        const { missing, wrong } = JSON.parse(check.slice("check ".length)) as { missing: string[]; wrong: string[] };
        tally.lostAcked += missing.length;
        tally.wrongValues += wrong.length;
        if (missing.length + wrong.length > 0)
          console.error(`after ${resumedFrom} start: missing ${missing.slice(0, 10).join(", ")}; wrong ${wrong.slice(0, 10).join(", ")}`);
      };

      for (let cut = 1; cut <= CUTS; cut++) {
        fs.writeFileSync(expectFile, JSON.stringify([...expected.keys()].map((key) => [key, valueOf(key)])));
        const run = startWorkload({
          STATE_DIR: stateDir,
          STORE_DIR: storeDir,
          GENERATION: String(cut),
          PREFIX: `c${cut}`,
          EXPECT_FILE: expectFile,
          INTERVAL_MS: String(20 + Math.floor(Math.random() * 180)), // commits keep happening, so cuts land in them
          WRITERS: String(1 + Math.floor(Math.random() * 6)),
        });
        // The moment of the cut: sometimes while the workload opens its state (recovery, restore), mostly
        // after a random number of acknowledged writes (commits, checkpoints and prunes run meanwhile).
        if (Math.random() < 0.15) {
          await run.line("integrity");
        } else {
          await verifyStart(run);
          const target = Math.floor(Math.random() * 400);
          await waitUntil(() => run.acks.length >= target || run.child.exitCode !== null, `${target} acknowledged writes`);
        }
        run.child.kill("SIGKILL");
        await run.exited;
        const answer = await powercut.cut(cut % 2 ? 0 : 0.5);
        tally.keptPages += Number(/kept=(\d+)/.exec(answer)?.[1] ?? 0);
        if (!run.lines.some((line) => line.startsWith("ready"))) tally.cutsBeforeReady++;
        if (run.stderr()) throw new Error(`workload failed at cut ${cut}: ${run.stderr()}`);
        for (const { key, seq } of run.acks) expected.set(key, seq);
        tally.acked += run.acks.length;
        if (cut % VOLUME_LOSS_EVERY === 0) {
          // The volume is lost for good. What a restore must bring back: the newest commit that verifies; the
          // writes after it are the loss one commit interval allows, and are not expected any more.
          const restorable = await newestSoundCommit(storeDir);
          for (const [key, seq] of expected) if (seq > restorable) expected.delete(key);
          fs.rmSync(stateDir, { recursive: true, force: true });
          fsyncDir(path.dirname(stateDir)); // not brought back by the next cut
          tally.volumeLosses++;
        }
      }

      // A last start checks the last cut's writes.
      fs.writeFileSync(expectFile, JSON.stringify([...expected.keys()].map((key) => [key, valueOf(key)])));
      const last = startWorkload({
        STATE_DIR: stateDir,
        STORE_DIR: storeDir,
        GENERATION: String(CUTS + 1),
        PREFIX: "last",
        EXPECT_FILE: expectFile,
        INTERVAL_MS: "60000",
        WRITERS: "0",
      });
      await verifyStart(last);
      last.child.kill("SIGKILL");
      await last.exited;

      // Every commit the store shows was renamed into place after its fsync: each must verify and restore.
      const store = new DirectoryStore(storeDir, "powercut");
      const commits = await store.list();
      const corruptCommits: string[] = [];
      for (const { id } of commits) {
        const problem = await commitProblem(store, id);
        if (problem) corruptCommits.push(`${id}: ${problem}`);
      }
      console.log(`power cuts: ${CUTS}, ${JSON.stringify(tally)}, commits in store ${commits.length}`);

      expect(tally.acked).toBeGreaterThan(CUTS * 5); // real load
      expect(tally.restores).toBeGreaterThan(0); // restores from the store were exercised
      expect(tally.keptPages).toBeGreaterThan(0); // partially written-back pages were exercised
      expect(tally.lostAcked).toBe(0);
      expect(tally.wrongValues).toBe(0);
      expect(tally.integrityFailures).toBe(0);
      expect(corruptCommits).toEqual([]);
      expect(commits.length).toBeGreaterThan(0);
    },
    30 * 60_000,
  );

  it(
    "cuts through a real container: the session service's acknowledged PUTs survive",
    async () => {
      const image = "reseat-session-workload:v1";
      const { Id: imageId } = await docker.getImage(image).inspect();
      const volume = path.join(mountpoint, "containers", "volume");
      const store = path.join(mountpoint, "containers", "store");
      for (const dir of [volume, store]) {
        fs.mkdirSync(dir, { recursive: true });
        fs.chownSync(dir, 1000, 1000); // the image's user (and root keeps access)
        fsyncDir(dir);
      }
      fsyncDir(path.join(mountpoint, "containers"));
      const port = 18700 + (process.pid % 200);
      const acked = new Map<string, unknown>();
      const name = `reseat-powercut-${process.pid}`;
      const rounds = 3;
      for (let round = 1; round <= rounds + 1; round++) {
        const container = await docker.createContainer({
          name: `${name}-${round}`,
          Image: imageId,
          Env: [
            `PORT=${port}`,
            "RESEAT_PE_ID=powercut-container",
            `RESEAT_GENERATION=${round}`,
            "RESEAT_STATE_DIR=/state",
            "RESEAT_COMMIT_INTERVAL_MS=100",
            `RESEAT_STORE={"kind":"directory","path":"/reseat-store"}`,
          ],
          HostConfig: {
            NetworkMode: "host",
            Mounts: [
              { Type: "bind", Source: volume, Target: "/state" },
              { Type: "bind", Source: store, Target: "/reseat-store" },
            ],
          },
        });
        try {
          await container.start();
          const status = await waitForJson<{ resumedFrom: string; seq: number }>(port, "/status");
          expect(status.resumedFrom).toBe(round === 1 ? "empty" : "local");
          const seen = await waitForJson<{ sessions: Record<string, unknown> }>(port, "/sessions");
          for (const [key, value] of acked) expect(seen.sessions[key], `acknowledged ${key} after cut ${round - 1}`).toEqual(value);
          if (round > rounds) break;
          // PUTs in flight while the power goes: only those answered 200 count as acknowledged.
          let stop = false;
          const writers = Array.from({ length: 3 }, async (_, w) => {
            for (let n = 0; !stop; n++) {
              const key = `r${round}-w${w}-${n}`;
              const value = { round, w, n };
              const res = await fetch(`http://127.0.0.1:${port}/sessions/${key}`, { method: "PUT", body: JSON.stringify(value) }).catch(() => undefined);
              if (res?.status === 200) acked.set(key, value);
            }
          });
          const target = acked.size + 20 + Math.floor(Math.random() * 200);
          await waitUntil(() => acked.size >= target, `${target} acknowledged PUTs`);
          await container.kill({ signal: "KILL" });
          await container.wait();
          stop = true;
          await Promise.all(writers);
          await powercut.cut(round % 2 ? 0 : 0.5);
        } finally {
          await container.remove({ force: true }).catch(() => undefined);
        }
      }
      expect(acked.size).toBeGreaterThan(0);
    },
    5 * 60_000,
  );
});

/** Poll (bounded) until `condition` holds. */
async function waitUntil(condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Why a store commit would not restore (bytes, SQLite integrity), or null when it would. */
async function commitProblem(store: DirectoryStore, id: string): Promise<string | null> {
  const target = path.join(work, `verify-${id}.db`);
  try {
    const fetched = await store.fetch(id, target);
    if ("damaged" in fetched) return fetched.damaged;
    const inspected = await inspectDatabaseFile(target);
    return inspected.problems.length ? inspected.problems.join("; ") : null;
  } finally {
    fs.rmSync(target, { force: true });
  }
}

/** Seq of the newest commit that would restore (0: none). */
async function newestSoundCommit(storeDir: string): Promise<number> {
  const store = new DirectoryStore(storeDir, "powercut");
  for (const { id, record } of await store.list()) {
    if (record && (await commitProblem(store, id)) === null) return record.seq;
  }
  return 0;
}

async function waitForJson<T>(port: number, urlPath: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return (await res.json()) as T;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`port ${port} did not answer ${urlPath} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
