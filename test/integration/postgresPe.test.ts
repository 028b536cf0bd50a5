// A PE committing to a real PostgreSQL: secrets stay secret, and a store outage only delays commits.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Project,
  ROOT,
  cleanup,
  docker,
  makeProject,
  mustSucceed,
  peOutputs,
  reseatCli,
  sessionSpec,
  sessions,
  startPersistentWriters,
  waitFor,
} from "../support/harness";
import { postgresSettings } from "../support/postgres";

const PE = `it-pg-${process.pid}`;
const PORT = 18700 + (process.pid % 80);
const pgEnv = postgresSettings();
const PASSWORD = pgEnv.RESEAT_PG_PASSWORD!;

function pg(command: "start" | "stop"): void {
  execFileSync("bash", [path.join(ROOT, "scripts", "postgres.sh"), command], { stdio: "ignore" });
}

function spec() {
  return sessionSpec(PE, PORT, {
    commitInterval: "500ms",
    persistentStore: {
      kind: "postgres",
      host: pgEnv.RESEAT_PG_HOST,
      port: Number(pgEnv.RESEAT_PG_PORT),
      database: pgEnv.RESEAT_PG_DATABASE,
      user: pgEnv.RESEAT_PG_USER,
      passwordSecret: "pgPassword",
    },
  });
}

describe("a processing element with a PostgreSQL store", () => {
  let project: Project;

  beforeAll(async () => {
    pg("start");
    await cleanup([PE]);
    project = makeProject("postgres", [spec()]);
    // The password enters as a Pulumi secret (encrypted in the stack config file).
    const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
    fs.mkdirSync(path.join(project.dir, ".pulumi-state"), { recursive: true });
    execFileSync("pulumi", ["stack", "select", "--create", project.stack], { cwd: project.dir, env, stdio: "ignore" });
    // The value from stdin, so that it never shows in a process list.
    execFileSync("pulumi", ["config", "set", "--secret", "--stack", project.stack, "reseat:pgPassword"], {
      cwd: project.dir,
      env,
      input: PASSWORD,
      stdio: ["pipe", "ignore", "inherit"],
    });
  });
  afterAll(async () => {
    pg("start");
    await cleanup([PE]);
  });

  it("up commits to PostgreSQL; the commit fields are in the outputs", async () => {
    await mustSucceed(project, "up");
    const put = await fetch(`http://127.0.0.1:${PORT}/sessions/alice`, { method: "PUT", body: JSON.stringify({ cart: [1] }) });
    const { seq } = (await put.json()) as { seq: number };
    // A commit holding the write (an interval commit may have shipped the empty state before it).
    const refreshed = await waitFor("a commit holding the write", async () => {
      const pe = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
      return ((pe.lastCommit as { seq: number } | null)?.seq ?? -1) >= seq ? pe : undefined;
    });
    expect(refreshed.lastCommit).toMatchObject({ seq: expect.any(Number), bytes: expect.any(Number) });
    expect(refreshed.commitLagMs).toBe(0);
  });

  it("PostgreSQL stopped: the workload keeps serving, commitLagMs grows, and catches up once it is back", async () => {
    pg("stop");
    const writers = startPersistentWriters(PORT, 1, "outage");
    try {
      await waitFor("writes during the outage", async () => (writers.acks.length >= 20 ? true : undefined));
      // Waited for, not slept for: how soon a commit attempt fails (a refused or timed-out connection) is not
      // the test's to control.
      const during1 = await waitFor(
        "the outage in the outputs: a failed commit, a lag",
        async () => {
          const pe = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
          return (pe.lastCommitError ?? "") !== "" && (pe.commitLagMs as number) > 0 ? pe : undefined;
        },
        120_000,
      );
      const during2 = await waitFor("the lag growing", async () => {
        const pe = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
        return (pe.commitLagMs as number) > (during1.commitLagMs as number) ? pe : undefined;
      });
      expect(during2.lastCommitError ?? "").not.toBe("");
      pg("start");
      const caughtUp = await waitFor(
        "commits to catch up",
        async () => {
          const pe = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
          return (pe.lastCommit as { seq: number }).seq > (during2.lastCommit as { seq: number }).seq && (pe.commitLagMs as number) < 2000 ? pe : undefined;
        },
        120_000,
      );
      expect(caughtUp.lastCommitError ?? null).toBeNull();
    } finally {
      pg("start");
      await writers.stop();
    }
    expect((await sessions(PORT)).sessions["outage-0"]).toBeDefined();
  });

  it("the state volume lost: restored from PostgreSQL", async () => {
    const before = peOutputs(await mustSucceed(project, "outputs"), PE);
    const committed = await waitFor("everything committed", async () => {
      const pe = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
      return pe.commitLagMs === 0 ? pe : undefined;
    });
    await docker.getContainer(before.executableId).remove({ force: true });
    await docker.getVolume(before.volumeName).remove();
    await mustSucceed(project, "refresh");
    const after = peOutputs(await mustSucceed(project, "up"), PE);
    expect(after.resumedFrom).toBe("persistent");
    expect(after.resumedSeq).toBe((committed.lastCommit as { seq: number }).seq);
    expect((await sessions(PORT)).sessions.alice).toEqual({ cart: [1] });
  });

  it("the password appears nowhere in plaintext: stack state, outputs, container inspect, logs", async () => {
    const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
    const exported = execFileSync("pulumi", ["stack", "export", "--stack", project.stack], { cwd: project.dir, env }).toString();
    const outputs = execFileSync("pulumi", ["stack", "output", "--json", "--stack", project.stack], { cwd: project.dir, env }).toString();
    const running = (await docker.listContainers({ filters: { label: [`io.reseat.pe-id=${PE}`] } }))[0]!;
    const inspect = JSON.stringify(await docker.getContainer(running.Id).inspect());
    const logs = (await docker.getContainer(running.Id).logs({ stdout: true, stderr: true, follow: false })).toString();
    const config = fs.readFileSync(path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`), "utf8");
    const cli = await reseatCli(project, "outputs");
    for (const [what, text] of Object.entries({ exported, outputs, inspect, logs, config, cli: JSON.stringify(cli.doc) })) {
      expect(text.includes(PASSWORD), what).toBe(false);
    }
    expect(exported).toContain("ciphertext"); // the secret is there, encrypted
  });
});
