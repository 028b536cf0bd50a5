// Issue: state that survives replacement. Real containers running the session-context service on
// reseat's state library, a real directory store, the real Pulumi CLI.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Project,
  ROOT,
  cleanup,
  containersOf,
  docker,
  lastAcked,
  makeProject,
  mustSucceed,
  peOutputs,
  sessionSpec,
  sessions,
  setSpecs,
  startWriters,
  waitFor,
} from "../support/harness";
import { storedCommits } from "../support/storeCommits";

const PE = `it-state-${process.pid}`;
const PORT = 18400 + (process.pid % 500);
const STORE = path.join(ROOT, ".work", `store-${PE}`);

function spec(overrides: Record<string, unknown> = {}) {
  return sessionSpec(PE, PORT, { persistentStore: { kind: "directory", hostPath: STORE }, ...overrides });
}

async function killHard(executableId: string): Promise<void> {
  await docker.getContainer(executableId).kill({ signal: "KILL" });
}

async function loseVolume(executableId: string, volumeName: string): Promise<void> {
  await docker.getContainer(executableId).remove({ force: true });
  await docker.getVolume(volumeName).remove();
}

function commitFiles(): string[] {
  const dir = path.join(STORE, encodeURIComponent(PE));
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".commit"))
    .sort(); // g<generation>-s<seq>.commit
}

describe("state that survives replacement (directory store)", () => {
  let project: Project;
  const commitSeqs: number[] = [];

  beforeAll(async () => {
    await cleanup([PE]);
    fs.rmSync(STORE, { recursive: true, force: true });
    fs.mkdirSync(STORE, { recursive: true });
    project = makeProject("state", [spec()]);
  });
  afterAll(async () => {
    await cleanup([PE]);
  });

  it("kill -9 mid-stream, reseat: every acknowledged update is there, resumed from local", async () => {
    const first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.resumedFrom).toBe("empty");
    const writers = startWriters(PORT, 4);
    await waitFor("200 acknowledged writes", async () => (writers.acks.length >= 200 ? true : undefined));
    await killHard(first.executableId);
    await writers.stop();

    await mustSucceed(project, "refresh");
    const second = peOutputs(await mustSucceed(project, "up"), PE);
    expect(second.generation).toBe(first.generation + 1);
    expect(second.resumedFrom).toBe("local");
    const seen = (await sessions(PORT)).sessions;
    for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBeGreaterThanOrEqual(value);
    expect(second.resumedSeq).toBeGreaterThanOrEqual(Math.max(...writers.acks.map((a) => a.seq)));
  });

  it("an image change: the final SIGTERM commit happens, the new executable resumes from local, commit seqs keep growing", async () => {
    // A long interval, so that only the final commit on SIGTERM can put the last writes in the store.
    setSpecs(project, [spec({ commitInterval: "10m" })]);
    const before = peOutputs(await mustSucceed(project, "up"), PE);
    const writers = startWriters(PORT, 2, "img");
    await waitFor("50 writes", async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    const lastSeq = Math.max(...writers.acks.map((a) => a.seq));
    if (before.lastCommit) commitSeqs.push((before.lastCommit as { seq: number }).seq);

    setSpecs(project, [spec({ commitInterval: "10m", image: "reseat-session-workload:v2" })]);
    const after = peOutputs(await mustSucceed(project, "up"), PE);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.resumedFrom).toBe("local");
    expect(after.resumedSeq).toBe(lastSeq);
    const lastCommit = after.lastCommit as { seq: number; bytes: number; at: string };
    expect(lastCommit.seq).toBe(lastSeq); // made by the old executable on SIGTERM
    commitSeqs.push(lastCommit.seq);
    expect(commitSeqs).toEqual([...commitSeqs].sort((a, b) => a - b));
  });

  it("a commit-interval change applies live, in place: the same executable picks it up", async () => {
    setSpecs(project, [spec({ commitInterval: "3s", image: "reseat-session-workload:v2" })]);
    const slow = peOutputs(await mustSucceed(project, "up"), PE);
    await waitFor("the workload on a 3s interval", async () => ((await status()).commitIntervalMs === 3000 ? true : undefined), 15_000);
    setSpecs(project, [spec({ commitInterval: "500ms", image: "reseat-session-workload:v2" })]);
    const result = await mustSucceed(project, "up");
    const fast = peOutputs(result, PE);
    expect(fast.executableId).toBe(slow.executableId);
    expect(fast.commitIntervalMs).toBe(500);
    // Read from the workload's own status, rewritten at its next tick. How soon that is (at most one old
    // interval) is a timing the test does not control on a loaded machine: it waits, it does not time it.
    await waitFor("the workload on the new interval", async () => ((await status()).commitIntervalMs === 500 ? true : undefined));
  });

  it("the state volume lost: restored from the newest commit; only writes after it are lost (measured)", async () => {
    setSpecs(project, [spec({ commitInterval: "1s", image: "reseat-session-workload:v2" })]);
    const before = peOutputs(await mustSucceed(project, "up"), PE);
    const writers = startWriters(PORT, 2, "vol");
    // Writes across commits, read from the store rather than timed: a commit holding some of this test's
    // writes, and writes after it (what the loss may take).
    const storeDir = path.join(STORE, encodeURIComponent(PE));
    await waitFor("a commit of this test's writes, and writes after it", async () => {
      const first = writers.acks[0]?.seq;
      const newest = storedCommits(storeDir).at(-1)?.seq ?? -1;
      return first !== undefined && newest >= first && writers.acks.some((ack) => ack.seq > newest) ? true : undefined;
    });
    await loseVolume(before.executableId, before.volumeName);
    await writers.stop();
    // The executable is gone: nothing commits any more, so this is the newest commit there will be.
    const newest = storedCommits(storeDir).at(-1)!.seq;

    await mustSucceed(project, "refresh");
    const after = peOutputs(await mustSucceed(project, "up"), PE);
    expect(after.resumedFrom).toBe("persistent");
    expect(after.resumedSeq).toBe(newest);
    const seen = (await sessions(PORT)).sessions;
    const lost = writers.acks.filter((ack) => (seen[ack.key]?.n ?? -1) < ack.value);
    console.log(`volume loss: ${writers.acks.length} acknowledged, ${lost.length} lost (all after the newest commit, seq ${newest})`);
    expect(lost.every((ack) => ack.seq > newest)).toBe(true);
    for (const ack of writers.acks.filter((a) => a.seq <= newest)) expect(seen[ack.key]?.n, ack.key).toBeGreaterThanOrEqual(ack.value);
  });

  it("a damaged newest commit is detected and the previous one restored", async () => {
    const current = peOutputs(await mustSucceed(project, "outputs"), PE);
    await sessions(PORT);
    await docker.getContainer(current.executableId).remove({ force: true });
    const files = commitFiles();
    expect(files.length).toBeGreaterThanOrEqual(2);
    const newest = path.join(STORE, encodeURIComponent(PE), files.at(-1)!);
    const previous = JSON.parse(fs.readFileSync(path.join(STORE, encodeURIComponent(PE), files.at(-2)!), "utf8").split("\n")[0]!) as { seq: number };
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff; // flip bits inside the snapshot
    fs.writeFileSync(newest, bytes);
    await docker.getVolume(current.volumeName).remove();

    await mustSucceed(project, "refresh");
    const after = peOutputs(await mustSucceed(project, "up"), PE);
    expect(after.resumedFrom).toBe("persistent");
    expect(after.resumedSeq).toBe(previous.seq);
  });

  it("stack outputs carry the commit fields (pulumi stack output --json)", async () => {
    const out = execFileSync("pulumi", ["stack", "output", "--json", "--stack", project.stack], {
      cwd: project.dir,
      env: { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` },
    }).toString();
    const pe = (JSON.parse(out) as { processingElements: Record<string, Record<string, unknown>> }).processingElements[PE]!;
    for (const field of ["commitIntervalMs", "lastCommit", "commitLagMs", "resumedFrom", "resumedSeq", "generation", "peId"]) {
      expect(pe, field).toHaveProperty(field);
    }
    expect(pe.lastCommit).toMatchObject({ seq: expect.any(Number), at: expect.any(String), bytes: expect.any(Number) });
    expect((await containersOf(PE, false)).length).toBe(1);
  });

  async function status(): Promise<{ commitIntervalMs: number }> {
    return (await fetch(`http://127.0.0.1:${PORT}/status`)).json() as Promise<{ commitIntervalMs: number }>;
  }
});
