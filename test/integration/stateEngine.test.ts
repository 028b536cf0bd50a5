// Issue 14, through the real CLI, Pulumi and Docker Engine: non-root workloads (the session image's USER
// 1000) through replacement, failure and volume loss; a store whose commits are all damaged (the PE does
// not start empty, the commits stay); a volume written by reseat 0.1 migrated on first start.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI,
  Project,
  ROOT,
  cleanup,
  docker,
  lastAcked,
  makeProject,
  mustSucceed,
  peOutputs,
  reseatCli,
  runProcess,
  runningOf,
  sessionSpec,
  sessions,
  setSpecs,
  startController,
  startWriters,
  waitFor,
} from "../support/harness";
import { storedCommits } from "../support/storeCommits";

const RUN = `${process.pid}`;
const NONROOT = `it-nonroot-${RUN}`;
const REFUSE = `it-refuse-${RUN}`;
const MIGRATE = `it-migrate-${RUN}`;
const PORT = 18300 + (process.pid % 100) * 3;
const STORE = path.join(ROOT, ".work", `store-state-engine-${RUN}`);
const FIXTURE = path.join(ROOT, "test", "fixtures", "legacy-0.1");

function spec(peId: string, port: number, overrides: Record<string, unknown> = {}) {
  return sessionSpec(peId, port, { persistentStore: { kind: "directory", hostPath: STORE }, ...overrides });
}

/** Where a local volume lives on this host (the tests run as root next to the engine). */
async function volumeDir(name: string): Promise<string> {
  return ((await docker.getVolume(name).inspect()) as { Mountpoint: string }).Mountpoint;
}

async function killHard(id: string): Promise<void> {
  await docker.getContainer(id).kill({ signal: "KILL" });
}

async function loseVolume(executableId: string, volumeName: string): Promise<void> {
  await docker.getContainer(executableId).remove({ force: true });
  await docker.getVolume(volumeName).remove();
}

function owners(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      const stat = fs.lstatSync(full);
      found.set(path.relative(dir, full), `${stat.uid}:${stat.gid} ${(stat.mode & 0o777).toString(8)}`);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return found;
}

beforeAll(async () => {
  await cleanup([NONROOT, REFUSE, MIGRATE]);
  fs.rmSync(STORE, { recursive: true, force: true });
  fs.mkdirSync(STORE, { recursive: true }); // root's, as a host directory usually is: reseat gives each PE its folder
});
afterAll(async () => {
  await cleanup([NONROOT, REFUSE, MIGRATE]);
});

describe("a non-root workload (the image's USER 1000)", () => {
  let project: Project;
  let controller: ReturnType<typeof startController> | undefined;
  beforeAll(() => {
    project = makeProject("nonroot", [spec(NONROOT, PORT)]);
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it("starts, and everything reseat and the workload wrote into the volume belongs to 1000:1000, with the usual modes", async () => {
    const first = peOutputs(await mustSucceed(project, "up"), NONROOT);
    expect(first.resumedFrom).toBe("empty");
    const writers = startWriters(PORT, 2, "first");
    await waitFor("50 writes", async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    const volume = await volumeDir(first.volumeName);
    expect(fs.statSync(volume).uid).toBe(1000);
    const files = owners(volume);
    expect(files.get(".reseat")).toBe("1000:1000 755");
    expect(files.get(".reseat/meta.json")).toBe("1000:1000 644");
    expect(files.get(".reseat/control.json")).toBe("1000:1000 644");
    expect(files.get("data/state.db")).toMatch(/^1000:1000 /);
    expect([...files.values()].filter((owner) => !owner.startsWith("1000:1000"))).toEqual([]);
    expect(fs.statSync(path.join(STORE, NONROOT)).uid).toBe(1000);
    expect(fs.statSync(STORE).uid).toBe(0); // the store's root is left as it was
  });

  it("through a replacement (new image): every acknowledged write there, resumed locally", async () => {
    const writers = startWriters(PORT, 2, "replace");
    await waitFor("100 writes", async () => (writers.acks.length >= 100 ? true : undefined));
    await writers.stop();
    setSpecs(project, [spec(NONROOT, PORT, { image: "reseat-session-workload:v2" })]);
    const after = peOutputs(await mustSucceed(project, "up"), NONROOT);
    expect(after.resumedFrom).toBe("local");
    const seen = (await sessions(PORT)).sessions;
    for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBe(value);
  });

  it("through a failure (kill -9, `reseat watch` reseats it): every acknowledged write there", async () => {
    controller = startController();
    await controller.ready;
    const before = (await runningOf(NONROOT))[0]!;
    const writers = startWriters(PORT, 2, "failure");
    await waitFor("100 writes", async () => (writers.acks.length >= 100 ? true : undefined));
    await killHard(before.Id);
    await writers.stop();
    await waitFor(
      "a new executable",
      async () => {
        const running = await runningOf(NONROOT);
        return running.length === 1 && running[0]!.Id !== before.Id ? true : undefined;
      },
      60_000,
    );
    const seen = (await waitFor("the service answering", () => sessions(PORT))).sessions;
    for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBeGreaterThanOrEqual(value);
    await controller.stop();
    controller = undefined;
  });

  it("through a volume loss: restored from the store, what was committed is there", async () => {
    const before = peOutputs(await mustSucceed(project, "up", "--refresh"), NONROOT);
    const writers = startWriters(PORT, 2, "loss");
    await waitFor("100 writes", async () => (writers.acks.length >= 100 ? true : undefined));
    await writers.stop();
    // Committed for sure: the status says a commit holds the last acknowledged seq.
    const lastSeq = Math.max(...writers.acks.map((a) => a.seq));
    await waitFor("a commit of every write", async () => {
      const status = (await (await fetch(`http://127.0.0.1:${PORT}/status`)).json()) as { lastCommit: { seq: number } | null };
      return (status.lastCommit?.seq ?? 0) >= lastSeq ? true : undefined;
    });
    await loseVolume(before.executableId, before.volumeName);
    await mustSucceed(project, "refresh");
    const after = peOutputs(await mustSucceed(project, "up"), NONROOT);
    expect(after.resumedFrom).toBe("persistent");
    const seen = (await sessions(PORT)).sessions;
    for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBe(value);
    expect(fs.statSync(await volumeDir(after.volumeName)).uid).toBe(1000);
  });

  it("runAsUser/runAsGroup override the image's USER", async () => {
    setSpecs(project, [spec(NONROOT, PORT, { image: "reseat-session-workload:v2", runAsUser: 1234, runAsGroup: 2345 })]);
    const after = peOutputs(await mustSucceed(project, "up"), NONROOT);
    expect(after.resumedFrom).toBe("local");
    const volume = await volumeDir(after.volumeName);
    const files = owners(volume);
    expect(files.get(".reseat/meta.json")).toBe("1234:2345 644");
    // The volume changed hands: everything in it now belongs to the new user (the workload must write it).
    expect([...files.values()].filter((owner) => !owner.startsWith("1234:2345"))).toEqual([]);
    const inspect = await docker.getContainer(after.executableId).inspect();
    expect(inspect.Config.User).toBe("1234:2345");
    expect((await fetch(`http://127.0.0.1:${PORT}/sessions/after-chown`, { method: "PUT", body: "{}" })).status).toBe(200);
  });
});

describe("a store whose commits are all damaged", () => {
  const port = PORT + 1;

  it("the PE does not start empty: up fails naming the reason, `reseat status` says restore-failed, the commits stay", async () => {
    const project = makeProject("refuse", [spec(REFUSE, port)]);
    const first = peOutputs(await mustSucceed(project, "up"), REFUSE);
    const writers = startWriters(port, 2, "data");
    await waitFor("50 writes", async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    // Two commits, made and read rather than assumed: wait for a first commit in the store, write once more,
    // and wait for a commit holding that write (an interval commit: a pending write is always shipped). The
    // final commit on SIGTERM may add a third; it is not counted on (under load it may not finish in time).
    const dir = path.join(STORE, REFUSE);
    await waitFor("a first commit", async () => (storedCommits(dir).length >= 1 ? true : undefined));
    const afterFirst = await fetch(`http://127.0.0.1:${port}/sessions/after-first-commit`, { method: "PUT", body: "{}" });
    expect(afterFirst.status).toBe(200);
    const { seq } = (await afterFirst.json()) as { seq: number };
    await waitFor(`a second commit, holding seq ${seq}`, async () => (storedCommits(dir).some((c) => c.seq >= seq) ? true : undefined), 60_000);
    setSpecs(project, [spec(REFUSE, port, { image: "reseat-session-workload:v2" })]);
    const second = peOutputs(await mustSucceed(project, "up"), REFUSE);
    // The volume lost first: the new executable commits too (its first interval), and a commit landing after
    // the damage would be a good one. Once it is gone, the store's commits are all there will be.
    await loseVolume(second.executableId, second.volumeName);
    const commits = storedCommits(dir).map((c) => c.name);
    expect(commits.length).toBeGreaterThanOrEqual(2);
    for (const name of commits) {
      const bytes = fs.readFileSync(path.join(dir, name));
      bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff; // a flipped byte inside each database
      fs.writeFileSync(path.join(dir, name), bytes);
    }
    const damaged = new Map(commits.map((name) => [name, fs.readFileSync(path.join(dir, name))]));

    await mustSucceed(project, "refresh");
    const refused = await reseatCli(project, "up");
    expect(refused.code).not.toBe(0);
    expect(refused.doc.error ?? refused.stderr).toMatch(/refusing to start empty: the persistent store has \d+ commit\(s\) and none verifies/);
    const status = await runProcess(process.execPath, [CLI, "status", "--json"]);
    const row = (
      JSON.parse(status.stdout) as { processingElements: Array<{ peId: string; state: string; restoreFailed: string[] | null }> }
    ).processingElements.find((r) => r.peId === REFUSE);
    expect(row?.state).toBe("restore-failed");
    expect(row?.restoreFailed).toHaveLength(commits.length);
    for (const reason of row!.restoreFailed!) expect(reason).toMatch(/\.commit: sha256 does not match the record$/);
    for (const [name, bytes] of damaged) expect(fs.readFileSync(path.join(dir, name)).equals(bytes), name).toBe(true);
    expect(first.generation).toBeLessThan(second.generation);

    // Starting empty is the PE's explicit choice.
    setSpecs(project, [
      spec(REFUSE, port, { image: "reseat-session-workload:v2", persistentStore: { kind: "directory", hostPath: STORE, allowEmptyStart: true } }),
    ]);
    const empty = peOutputs(await mustSucceed(project, "up"), REFUSE);
    expect(empty.resumedFrom).toBe("empty");
  });
});

describe("a volume written by reseat 0.1 (journal + snapshot)", () => {
  const port = PORT + 2;

  it("is migrated on first start: every entry there, resumed locally, seq continues", async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8")) as { volume: { seq: number; entries: Array<[string, unknown]> } };
    const project = makeProject("migrate", [spec(MIGRATE, port, { persistentStore: { kind: "none" } })]);
    const first = peOutputs(await mustSucceed(project, "up"), MIGRATE);
    // Replace the volume's content by a 0.1 volume as a 0.1 workload (root) left it.
    await docker.getContainer(first.executableId).remove({ force: true });
    const volume = await volumeDir(first.volumeName);
    for (const entry of fs.readdirSync(volume)) fs.rmSync(path.join(volume, entry), { recursive: true, force: true });
    fs.cpSync(path.join(FIXTURE, "volume"), volume, { recursive: true });
    const meta = JSON.parse(fs.readFileSync(path.join(volume, ".reseat", "meta.json"), "utf8")) as Record<string, unknown>;
    fs.writeFileSync(path.join(volume, ".reseat", "meta.json"), JSON.stringify({ ...meta, peId: MIGRATE, volume: first.volumeName }));
    fs.chownSync(volume, 0, 0);

    await mustSucceed(project, "refresh");
    const after = peOutputs(await mustSucceed(project, "up"), MIGRATE);
    expect(after.resumedFrom).toBe("local");
    expect(after.resumedSeq).toBe(expected.volume.seq);
    expect(after.generation).toBe(4); // the 0.1 volume was at generation 3
    const seen = await sessions(port);
    expect(seen.seq).toBe(expected.volume.seq);
    expect(Object.entries(seen.sessions)).toEqual(expected.volume.entries);
    expect(fs.readdirSync(path.join(volume, "data", "migrated-0.1")).sort()).toEqual(["journal.log", "snapshot.json"]);
    const put = (await (await fetch(`http://127.0.0.1:${port}/sessions/after-migration`, { method: "PUT", body: "{}" })).json()) as { seq: number };
    expect(put.seq).toBe(expected.volume.seq + 1);
  });
});
