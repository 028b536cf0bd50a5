// The backend contract: one set of cases that every engine behind the `Backend` seam passes — the fake
// (engine-free unit test), the machine's Docker Engine and the local Kubernetes cluster (integration
// tests). A behaviour that differs by engine is either written here (with the words "on an engine
// that …") or a bug. Each run makes its own uniquely named volumes, executables and leases and removes
// them afterwards; the engine's own world (images present or absent, a namespace) comes from `setup`.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROLLER_RECORD, CONTROL_RECORD, type RecordCodec, storeFolder } from "@reseat/state/contract";
import { Backend, ExecutableDesired, ExecutableEvent, LeaseRecord, VolumeClaim, executableName } from "../../src/backend/backend";

/** One engine as the contract drives it. */
export interface ContractEngine {
  backend: Backend;
  /** claimVolume's driver here (Docker: "local"; Kubernetes: the test's StorageClass). */
  volumeDriver: string;
  /** claimVolume's size (Kubernetes). */
  volumeSize?: string;
  images: {
    /** A small workload the engine has: GET /healthz on $PORT (listening on $LISTEN_HOST), runs until SIGTERM. */
    ready: string;
    /** An image the engine has that exits at start, printing `crashOutput`. */
    crashing: string;
    crashOutput: RegExp;
    /** A workload on the state library (the session service): GET /healthz and /status on $PORT; it writes its status. */
    stateful: string;
    /** A reference the engine does not have, whose registry (if asked) is not there. */
    absent: string;
  };
  /**
   * What a running workload sees (its user, its store secret, whether it can write its state). Default:
   * the contract runs a probe script in the ready image (it has node) and reads its line from the logs.
   * The fake runs no process, so it answers from what it holds.
   */
  workloadView?: (executableId: string, desired: ExecutableDesired) => Promise<WorkloadView>;
  /** Writes a record's raw text where the engine keeps it (bypassing its codec): a damaged or future record. */
  damageRecord: (volumeName: string, record: RecordCodec<unknown>, text: string) => Promise<void>;
  /** The fake runs no process: it is handed what a running workload's state library would write. */
  workloadReports?: (desired: ExecutableDesired, generation: number) => Promise<void>;
  /** Engine-specific parts of a desired spec (Kubernetes: the engine target, the status endpoint). */
  adapt?: (desired: ExecutableDesired) => ExecutableDesired;
  /** Removes what setup made (a namespace); the contract removes its own objects first. */
  teardown?: () => Promise<void>;
}

/** What the workload sees from inside its executable. */
export interface WorkloadView {
  uid: number;
  gid: number;
  /** sha256 of the store password where RESEAT_STORE's passwordFile says (or why it could not be read); null without one. */
  storeSecret: string | null;
  /** true, or why the state directory could not be written. */
  stateWritable: true | string;
  /** A directory store: true when its PE folder (PROBE_STORE_FOLDER) could be made and written, else why not; null for other stores. */
  storeWritable: true | string | null;
}

/** Prints what the workload sees as one line, `probe {…}`, then waits to be stopped. */
const PROBE_SCRIPT = [
  'const fs = require("node:fs"), crypto = require("node:crypto");',
  "const store = JSON.parse(process.env.RESEAT_STORE);",
  "const attempt = (work) => { try { work(); return true; } catch (e) { return `failed: ${e.code}`; } };",
  'let storeSecret = null; if (store.passwordFile) { try { storeSecret = crypto.createHash("sha256").update(fs.readFileSync(store.passwordFile)).digest("hex"); } catch (e) { storeSecret = `unreadable: ${e.code}`; } }',
  'const stateWritable = attempt(() => fs.writeFileSync(`${process.env.RESEAT_STATE_DIR}/probe`, "x"));',
  "const folder = `${store.path}/${process.env.PROBE_STORE_FOLDER}`;",
  'const storeWritable = store.kind === "directory" ? attempt(() => { fs.mkdirSync(folder, { recursive: true }); fs.writeFileSync(`${folder}/probe`, "x"); }) : null;',
  "console.log(`probe ${JSON.stringify({ uid: process.getuid(), gid: process.getgid(), storeSecret, stateWritable, storeWritable })}`);",
  'setInterval(() => undefined, 60_000); process.on("SIGTERM", () => process.exit(0));',
].join("\n");

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Bounds every wait for the engine (an event, a state): generous, never asserted as timing. */
const WAIT_MS = 120_000;
/** Each case's own bound (above WAIT_MS: a case may wait for a pod to start, then for an event). */
const CASE_MS = 300_000;
const WORKLOAD_PORT = 8080;

/**
 * Declares the contract's cases for one engine. `setup` runs once (beforeAll) with a short name prefix
 * unique to this run (lowercase, DNS-safe: volumes, PE ids and leases all derive from it).
 */
export function defineBackendContract(engineName: string, setup: (prefix: string) => Promise<ContractEngine>): void {
  describe(`backend contract: ${engineName}`, () => {
    const prefix = `ct${engineName.slice(0, 3).toLowerCase()}${process.pid}${Date.now().toString(36).slice(-4)}`;
    let engine: ContractEngine;
    let backend: Backend;
    let readyImageId: string;
    let statefulImageId: string;
    const peIds = new Set<string>();
    const volumes = new Set<string>();
    const leases: LeaseRecord[] = [];

    beforeAll(async () => {
      engine = await setup(prefix);
      backend = engine.backend;
      const resolved = await backend.resolveImage(engine.images.ready);
      if (resolved.kind !== "resolved") throw new Error(`contract setup: the engine does not have ${engine.images.ready} (${JSON.stringify(resolved)})`);
      readyImageId = resolved.imageId;
      const stateful = await backend.resolveImage(engine.images.stateful);
      if (stateful.kind !== "resolved") throw new Error(`contract setup: the engine does not have ${engine.images.stateful} (${JSON.stringify(stateful)})`);
      statefulImageId = stateful.imageId;
    });

    afterAll(async () => {
      if (!backend) return;
      const problems: string[] = [];
      const attempt = (what: string, work: Promise<unknown>) => work.catch((error: Error) => problems.push(`${what}: ${error.message}`));
      for (const peId of peIds) for (const e of await backend.listExecutables(peId).catch(() => [])) await attempt(`remove ${e.name}`, backend.remove(e.id));
      // A standby PE's network holder (Docker: it outlives executables; the routine's retire releases it).
      for (const peId of peIds) if (backend.releasePeNetwork) await attempt(`release the network of ${peId}`, backend.releasePeNetwork(peId));
      for (const lease of leases) await attempt(`release lease ${lease.name}`, backend.releaseLease(lease));
      for (const volume of volumes) await attempt(`remove volume ${volume}`, backend.removeVolume(volume));
      await engine.teardown?.();
      if (problems.length) throw new Error(`contract cleanup: ${problems.join("; ")}`);
    });

    // --- helpers (names unique to this run; everything made is removed in afterAll) ----------------

    const pe = (suffix: string): string => {
      const peId = `${prefix}-${suffix}`;
      peIds.add(peId);
      return peId;
    };
    const ownerOf = (peId: string, stack = "contract"): string => `reseat-contract/${stack}/${peId}`;
    const claimOf = (peId: string, owner = ownerOf(peId)): VolumeClaim => {
      const name = `${peId}-state`;
      volumes.add(name);
      return { name, driver: engine.volumeDriver, peId, owner, ...(engine.volumeSize ? { size: engine.volumeSize } : {}) };
    };
    const claimed = async (peId: string): Promise<string> => (await backend.claimVolume(claimOf(peId))).name;
    const leaseName = (suffix: string): string => `${prefix}-${suffix}`;
    const acquired = async (name: string, holder: string, leaseMs = 30_000): Promise<LeaseRecord> => {
      const result = await backend.tryAcquireLease(name, holder, leaseMs);
      if (!result.acquired) throw new Error(`lease ${name}: expected to acquire it, held by ${result.current.holder}`);
      leases.push(result.lease);
      return result.lease;
    };
    const desiredFor = (peId: string, volumeName: string, overrides: Partial<ExecutableDesired> = {}): ExecutableDesired => {
      const base: ExecutableDesired = {
        peId,
        owner: ownerOf(peId),
        imageRef: engine.images.ready,
        imageId: readyImageId,
        env: { PORT: String(WORKLOAD_PORT), LISTEN_HOST: "0.0.0.0" },
        ports: [],
        network: "bridge",
        resources: {},
        volumeName,
        mountPath: "/state",
        stop: { signal: "SIGTERM", graceSeconds: 5 },
        readiness: { httpGet: { port: WORKLOAD_PORT, path: "/healthz" }, timeout: WAIT_MS },
        commitIntervalMs: 5000,
        store: { kind: "none" },
        ...overrides,
      };
      return engine.adapt ? engine.adapt(base) : base;
    };
    const crashingFor = (peId: string, volumeName: string): ExecutableDesired => {
      const imageId = engine.images.crashing;
      // A readiness check it never passes: waitReady waits until the executable exits (without one, running is ready).
      return desiredFor(peId, volumeName, { imageRef: imageId, imageId: imageId });
    };
    /** The probe script's line from the executable's logs (it may print a moment after it runs). */
    const probeView = async (id: string): Promise<WorkloadView> => {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const line = /^probe (\{.*\})$/m.exec(await backend.logsTail(id, 50))?.[1];
        if (line) return JSON.parse(line) as WorkloadView;
        if (Date.now() > deadline) throw new Error(`the probe printed nothing within ${WAIT_MS / 1000} s: ${await backend.logsTail(id, 20)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    /** Prepares generation `generation` of a desired spec; returns its id. */
    const prepared = async (desired: ExecutableDesired, generation = 1, specHash = `hash-${desired.peId}-${generation}`): Promise<string> =>
      backend.prepare(desired, { name: executableName(desired.peId, generation), generation, specHash });

    /** A case of the contract, with room for a slow engine (pods start in seconds, not milliseconds). */
    const test = (name: string, body: () => Promise<void>): void => void it(name, body, CASE_MS);

    // --- identity ---------------------------------------------------------------------------------

    test("identity: names the engine's kind and a stable id; ping answers", async () => {
      const first = await backend.identity();
      expect(first.kind).toBe(backend.kind);
      expect(first.id).not.toBe("");
      expect(first.name).not.toBe("");
      expect(await backend.identity()).toEqual(first);
      await backend.ping();
    });

    // --- claims -----------------------------------------------------------------------------------

    test("claims: claimVolume creates the volume for its owner; inspectVolume and listStateVolumes show it", async () => {
      const peId = pe("claim");
      const claim = claimOf(peId);
      expect(await backend.inspectVolume(claim.name)).toBeUndefined();
      const made = await backend.claimVolume(claim);
      expect(made).toMatchObject({ name: claim.name, peId, owner: claim.owner, created: true });
      expect(await backend.inspectVolume(claim.name)).toMatchObject({ name: claim.name, peId, owner: claim.owner });
      expect((await backend.listStateVolumes()).map((v) => v.name)).toContain(claim.name);
    });

    test("claims: a second claim by another owner is not created and sees the first owner", async () => {
      const peId = pe("claim2");
      const first = await backend.claimVolume(claimOf(peId, ownerOf(peId, "first")));
      expect(first.created).toBe(true);
      const second = await backend.claimVolume(claimOf(peId, ownerOf(peId, "second")));
      expect(second).toMatchObject({ created: false, owner: ownerOf(peId, "first") });
      expect((await backend.inspectVolume(first.name))?.owner).toBe(ownerOf(peId, "first"));
    });

    test("claims: of 6 concurrent claims for one name, exactly one creates it and all see the same owner", async () => {
      const peId = pe("race");
      const owners = Array.from({ length: 6 }, (_, i) => ownerOf(peId, `racer${i}`));
      const results = await Promise.all(owners.map((owner) => backend.claimVolume(claimOf(peId, owner))));
      const winners = results.filter((r) => r.created);
      expect(winners).toHaveLength(1);
      expect(new Set(results.map((r) => r.owner))).toEqual(new Set([winners[0]!.owner]));
      expect((await backend.inspectVolume(winners[0]!.name))?.owner).toBe(winners[0]!.owner);
    });

    // --- generations ------------------------------------------------------------------------------

    test("generations: a new volume has none; a recorded one reads back; later ones replace it", async () => {
      const peId = pe("gen");
      const volume = await claimed(peId);
      expect(await backend.readGeneration(volume)).toBeUndefined();
      const at = new Date().toISOString();
      await backend.recordGeneration({ peId, generation: 1, volume, updatedAt: at });
      expect(await backend.readGeneration(volume)).toMatchObject({ peId, generation: 1, volume });
      for (const generation of [2, 3, 7]) {
        await backend.recordGeneration({ peId, generation, volume, updatedAt: new Date().toISOString() });
        expect((await backend.readGeneration(volume))?.generation).toBe(generation);
      }
    });

    test("generations: only go up — recording one not above the recorded generation is refused and changes nothing", async () => {
      const peId = pe("genup");
      const volume = await claimed(peId);
      await backend.recordGeneration({ peId, generation: 5, volume, updatedAt: new Date().toISOString() });
      await expect(backend.recordGeneration({ peId, generation: 5, volume, updatedAt: "" })).rejects.toThrow(/generation 5/);
      await expect(backend.recordGeneration({ peId, generation: 4, volume, updatedAt: "" })).rejects.toThrow(/generation 5/);
      expect((await backend.readGeneration(volume))?.generation).toBe(5);
    });

    // --- records ----------------------------------------------------------------------------------

    test("records: control, revert and controller records are absent on a new volume, then read back as written (rewrites replace them)", async () => {
      const peId = pe("records");
      const volume = await claimed(peId);
      expect(await backend.readControl(volume)).toBeUndefined();
      expect(await backend.readRevert(volume)).toBeUndefined();
      expect(await backend.readControllerRecord(volume)).toBeUndefined();

      const control = { commitIntervalMs: 2500, failureBackoff: { initialMs: 1000, maxMs: 8000, resetAfterMs: 60_000 } };
      await backend.writeControl(volume, control);
      expect(await backend.readControl(volume)).toEqual(control);
      await backend.writeControl(volume, { commitIntervalMs: 700 });
      expect(await backend.readControl(volume)).toEqual({ commitIntervalMs: 700 });

      const revert = {
        reverted: true,
        at: new Date().toISOString(),
        failedExecutable: executableName(peId, 4),
        failedSpecHash: "bad",
        servingGeneration: 5,
        servingExecutable: executableName(peId, 5),
        readyAt: new Date().toISOString(),
        error: "exited with code 3",
      };
      await backend.writeRevert(volume, revert);
      expect(await backend.readRevert(volume)).toEqual(revert);
      await backend.writeRevert(volume, { reverted: false });
      expect(await backend.readRevert(volume)).toEqual({ reverted: false });

      const controller = {
        restarts: 2,
        consecutiveFailures: 1,
        lastFailureAt: new Date().toISOString(),
        lastFailure: "exited with code 137",
        lastReseatAt: new Date().toISOString(),
        state: "backoff" as const,
      };
      await backend.writeControllerRecord(volume, controller);
      expect(await backend.readControllerRecord(volume)).toEqual(controller);

      // One record never overwrites another, nor the generation.
      await backend.recordGeneration({ peId, generation: 1, volume, updatedAt: new Date().toISOString() });
      expect(await backend.readControl(volume)).toEqual({ commitIntervalMs: 700 });
      expect(await backend.readRevert(volume)).toEqual({ reverted: false });
      expect(await backend.readControllerRecord(volume)).toEqual(controller);
      expect((await backend.readGeneration(volume))?.generation).toBe(1);
    });

    test("records: a damaged record, or one written by a newer reseat, reads as a RecordCorruptError naming it; the others stay readable; a write repairs it", async () => {
      const peId = pe("corrupt");
      const volume = await claimed(peId);
      const controller = { restarts: 1, consecutiveFailures: 0, lastFailureAt: null, lastFailure: null, lastReseatAt: null, state: "ok" as const };
      await backend.writeControl(volume, { commitIntervalMs: 1000 });
      await backend.writeControllerRecord(volume, controller);
      await engine.damageRecord(volume, CONTROL_RECORD, "{ not json");
      await expect(backend.readControl(volume)).rejects.toMatchObject({ name: "RecordCorruptError", record: "control" });
      expect(await backend.readControllerRecord(volume)).toEqual(controller);
      await engine.damageRecord(volume, CONTROLLER_RECORD, JSON.stringify({ ...controller, version: 99 }));
      await expect(backend.readControllerRecord(volume)).rejects.toMatchObject({
        name: "RecordCorruptError",
        record: "controller",
        message: expect.stringMatching(/newer reseat/),
      });
      await backend.writeControl(volume, { commitIntervalMs: 1500 });
      expect(await backend.readControl(volume)).toEqual({ commitIntervalMs: 1500 });
    });

    test("records: a volume no workload ran on has no workload status; a PE without a store has store generation 0", async () => {
      const peId = pe("status");
      const volume = await claimed(peId);
      expect(await backend.readWorkloadStatus(volume)).toBeUndefined();
      expect(await backend.readStoreGeneration({ kind: "none" }, peId)).toBe(0);
    });

    test("records: for a non-root user the workload runs as it, writes its state and reads its store secret where RESEAT_STORE says", async () => {
      const peId = pe("owner");
      const volume = await claimed(peId);
      const user = { uid: 2345, gid: 2345 }; // neither root nor the image's USER (1000)
      const password = `contract-password-${prefix}`;
      // As the replacement routine does: the secret and the volume given to the workload's user, the generation recorded.
      await backend.writeStoreSecret(volume, password, user);
      await backend.ownState(volume, user);
      await backend.recordGeneration({ peId, generation: 1, volume, updatedAt: new Date().toISOString() });
      const desired = desiredFor(peId, volume, {
        user,
        command: ["node", "-e", PROBE_SCRIPT],
        store: { kind: "postgres", host: "127.0.0.1", port: 5432, database: "contract", user: "contract", table: "commits", keep: 3, password },
        readiness: { logLine: "^probe ", timeout: WAIT_MS },
      });
      const id = await prepared(desired);
      await backend.start(id);
      await backend.waitReady(id, desired);
      const view = await (engine.workloadView ?? probeView)(id, desired);
      expect(view).toEqual({ uid: 2345, gid: 2345, storeSecret: sha256(password), stateWritable: true, storeWritable: null });
      await backend.stop(id, desired.stop);
      await backend.remove(id);
    });

    test("records: a directory store's PE folder is the non-root workload's (prepareStoreFolder): it writes there; a fresh store is at generation 0", async () => {
      const peId = pe("dirstore");
      const volume = await claimed(peId);
      const storeVolume = `${peId}-store`;
      volumes.add(storeVolume);
      // The store is a volume of its own (a claim on Kubernetes, where the pod mounts it).
      await backend.claimVolume({ ...claimOf(peId), name: storeVolume });
      const store = { kind: "directory" as const, volume: storeVolume, keep: 3 };
      expect(await backend.readStoreGeneration(store, peId)).toBe(0);
      const user = { uid: 2345, gid: 2345 };
      await backend.prepareStoreFolder(store, peId, user);
      await backend.ownState(volume, user);
      const desired = desiredFor(peId, volume, {
        user,
        env: { ...desiredFor(peId, volume).env, PROBE_STORE_FOLDER: storeFolder(peId) },
        command: ["node", "-e", PROBE_SCRIPT],
        store,
        readiness: { logLine: "^probe ", timeout: WAIT_MS },
      });
      const id = await prepared(desired);
      await backend.start(id);
      await backend.waitReady(id, desired);
      const view = await (engine.workloadView ?? probeView)(id, desired);
      expect(view).toEqual({ uid: 2345, gid: 2345, storeSecret: null, stateWritable: true, storeWritable: true });
      await backend.stop(id, desired.stop);
      await backend.remove(id);
    });

    test("records: readWorkloadStatus reads what a running workload's state library reports (its PE id and generation)", async () => {
      const peId = pe("wstatus");
      const volume = await claimed(peId);
      // As the routine does: the volume is given to the image's user (a non-root USER), then the generation recorded.
      const owner = await backend.imageUser?.(statefulImageId);
      if (owner) await backend.ownState(volume, owner);
      await backend.recordGeneration({ peId, generation: 1, volume, updatedAt: new Date().toISOString() }, owner);
      const desired = desiredFor(peId, volume, { imageRef: engine.images.stateful, imageId: statefulImageId, commitIntervalMs: 1000 });
      const id = await prepared(desired, 1);
      await backend.start(id);
      await backend.waitReady(id, desired);
      await engine.workloadReports?.(desired, 1);
      // The library writes its status as it starts and on each commit: read until there is one.
      const deadline = Date.now() + WAIT_MS;
      let status = await backend.readWorkloadStatus(volume);
      while (!status && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        status = await backend.readWorkloadStatus(volume);
      }
      expect(status).toMatchObject({ peId, generation: 1 });
      await backend.stop(id, desired.stop);
      await backend.remove(id);
    });

    // --- leases -----------------------------------------------------------------------------------

    test("leases: of 6 concurrent tryAcquireLease for one name exactly one acquires; the others see its holding", async () => {
      const name = leaseName("race");
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => backend.tryAcquireLease(name, `holder-${i}`, 30_000)));
      const won = results.flatMap((r) => (r.acquired ? [r.lease] : []));
      expect(won).toHaveLength(1);
      leases.push(won[0]!);
      for (const r of results) if (!r.acquired) expect(r.current).toMatchObject({ name, holder: won[0]!.holder, token: won[0]!.token });
      expect(await backend.readLease(name)).toMatchObject({ name, holder: won[0]!.holder, token: won[0]!.token, leaseMs: 30_000 });
    });

    test("leases: readLease of a name never taken is undefined", async () => {
      expect(await backend.readLease(leaseName("never"))).toBeUndefined();
    });

    test("leases: renewLease moves the renewal count that readLease shows", async () => {
      const name = leaseName("renew");
      const lease = await acquired(name, "renewer");
      const before = (await backend.readLease(name))!.renewals;
      expect(await backend.renewLease(lease)).toBe(true);
      const once = (await backend.readLease(name))!.renewals;
      expect(once).toBeGreaterThan(before);
      expect(await backend.renewLease(lease)).toBe(true);
      expect((await backend.readLease(name))!.renewals).toBeGreaterThan(once);
      expect(await backend.holdsLease(lease)).toBe(true);
    });

    test("leases: after release another takes the lease; the released holding neither holds nor renews", async () => {
      const name = leaseName("retake");
      const first = await acquired(name, "first");
      await backend.releaseLease(first);
      expect(await backend.readLease(name)).toBeUndefined();
      const second = await acquired(name, "second");
      expect(second.token).not.toBe(first.token);
      expect(await backend.holdsLease(first)).toBe(false);
      expect(await backend.renewLease(first)).toBe(false);
      expect(await backend.holdsLease(second)).toBe(true);
    });

    test("leases: a release by an old token never removes someone else's holding", async () => {
      const name = leaseName("stale");
      const first = await acquired(name, "first");
      await backend.releaseLease(first);
      const second = await acquired(name, "second");
      await backend.releaseLease(first);
      expect(await backend.readLease(name)).toMatchObject({ holder: "second", token: second.token });
      expect(await backend.holdsLease(second)).toBe(true);
    });

    // --- executables: prepare / start / stop / remove -----------------------------------------------

    test("prepare: creates a not-started executable bound to the volume, carrying generation, specHash, peId and owner", async () => {
      const peId = pe("prep");
      const volume = await claimed(peId);
      const desired = desiredFor(peId, volume);
      const id = await prepared(desired, 3, "spec-prep");
      const seen = await backend.inspectExecutable(id);
      expect(seen).toMatchObject({
        id,
        name: executableName(peId, 3),
        peId,
        owner: desired.owner,
        generation: 3,
        specHash: "spec-prep",
        volumeName: volume,
        running: false,
      });
      expect(seen!.state).toBe("created");
      expect((await backend.listExecutables(peId)).map((e) => e.id)).toEqual([id]);
      expect(await backend.runningOnVolume(volume)).toEqual([]);
      await backend.remove(id);
    });

    // Not in the contract: prepare on a volume never claimed. Kubernetes and the fake refuse it; Docker makes
    // a missing named volume on mount (unlabeled, as any mount does). Callers claim first and the routine
    // checks the volume's owner before anything else (assertVolumeOwned), so no caller depends on either.
    test("prepare: refuses a name already in use", async () => {
      const peId = pe("prepno");
      const volume = await claimed(peId);
      const desired = desiredFor(peId, volume);
      const id = await prepared(desired, 1);
      await expect(prepared(desired, 1, "another-spec")).rejects.toThrow();
      expect((await backend.listExecutables(peId)).map((e) => e.id)).toEqual([id]);
      await backend.remove(id);
    });

    test("start, stop, remove: start → running (waitReady resolves; runningOnVolume names it); stop → nothing runs; remove → gone", async () => {
      const peId = pe("life");
      const volume = await claimed(peId);
      const desired = desiredFor(peId, volume);
      const id = await prepared(desired);
      await backend.start(id);
      await backend.waitReady(id, desired);
      const running = await backend.inspectExecutable(id);
      expect(running).toMatchObject({ id, peId, running: true });
      expect(running?.startedAt).toBeTruthy();
      expect((await backend.listExecutables(peId)).filter((e) => e.running).map((e) => e.id)).toEqual([id]);
      expect((await backend.runningOnVolume(volume)).map((h) => ({ id: h.id, peId: h.peId }))).toEqual([{ id, peId }]);
      // A volume an executable runs on is never removed from under it.
      await expect(backend.removeVolume(volume)).rejects.toThrow();
      expect((await backend.inspectVolume(volume))?.owner).toBe(desired.owner);

      await backend.stop(id, desired.stop);
      // After stop nothing of it runs. Docker and the fake keep the stopped executable listed until it is
      // removed; Kubernetes can only stop a pod by deleting it, so it may already be gone: either is the
      // contract (callers remove after stop either way, and read what they need before it).
      const stopped = await backend.inspectExecutable(id);
      if (stopped) expect(stopped.running).toBe(false);
      expect((await backend.listExecutables(peId)).filter((e) => e.running)).toEqual([]);
      expect(await backend.runningOnVolume(volume)).toEqual([]);

      await backend.remove(id);
      expect(await backend.inspectExecutable(id)).toBeUndefined();
      expect(await backend.listExecutables(peId)).toEqual([]);
      // Stopping or removing what is gone is no error (a retry after a lost answer).
      await backend.stop(id, desired.stop);
      await backend.remove(id);
      await backend.removeVolume(volume);
      expect(await backend.inspectVolume(volume)).toBeUndefined();
    });

    // --- observe by identity ----------------------------------------------------------------------

    test("observe: listExecutables(peId) returns only that PE's executables; inspectExecutable reads each by id", async () => {
      const [a, b] = [pe("obsa"), pe("obsb")];
      const [volumeA, volumeB] = await Promise.all([claimed(a), claimed(b)]);
      const idA = await prepared(desiredFor(a, volumeA), 1, "spec-a");
      const idB = await prepared(desiredFor(b, volumeB), 2, "spec-b");
      expect((await backend.listExecutables(a)).map((e) => e.id)).toEqual([idA]);
      expect((await backend.listExecutables(b)).map((e) => e.id)).toEqual([idB]);
      const all = (await backend.listExecutables()).map((e) => e.id);
      expect(all).toContain(idA);
      expect(all).toContain(idB);
      expect(await backend.inspectExecutable(idA)).toMatchObject({ peId: a, generation: 1, specHash: "spec-a", volumeName: volumeA });
      expect(await backend.inspectExecutable(idB)).toMatchObject({ peId: b, generation: 2, specHash: "spec-b", volumeName: volumeB });
      await Promise.all([backend.remove(idA), backend.remove(idB)]);
      expect(await backend.inspectExecutable(idA)).toBeUndefined();
    });

    test("observe: desiredOf round-trips the desired spec, secret env values filled back", async () => {
      const peId = pe("desired");
      const volume = await claimed(peId);
      const desired = desiredFor(peId, volume, {
        env: { PORT: String(WORKLOAD_PORT), LISTEN_HOST: "0.0.0.0", API_TOKEN: `contract-secret-${prefix}` },
        secretEnv: ["API_TOKEN"],
        declaredBy: `declarer-${prefix}`,
        command: ["node", "/app/server.js"],
      });
      const id = await prepared(desired, 1, "spec-desired");
      expect(await backend.desiredOf(id)).toEqual(desired);
      await backend.remove(id);
    });

    // --- readiness ----------------------------------------------------------------------------------

    test("readiness: waitReady rejects with the logs' tail for an executable that exits at start", async () => {
      const peId = pe("crash");
      const volume = await claimed(peId);
      const desired = crashingFor(peId, volume);
      const id = await prepared(desired);
      await backend.start(id);
      const failure = await backend.waitReady(id, desired).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(failure?.message).toMatch(/exited with code \d+ before it was ready/);
      expect(failure?.message).toMatch(engine.images.crashOutput);
      const exited = await backend.inspectExecutable(id);
      expect(exited).toMatchObject({ running: false });
      expect(exited?.exitCode).not.toBe(0);
      await backend.remove(id);
    });

    // --- events ---------------------------------------------------------------------------------------

    test("events: watchExecutables reports `exited` for an executable that dies; `ended` resolves after close", async () => {
      const peId = pe("events");
      const volume = await claimed(peId);
      const events: ExecutableEvent[] = [];
      let heard!: (event: ExecutableEvent) => void;
      const exited = new Promise<ExecutableEvent>((resolve) => (heard = resolve));
      const stream = await backend.watchExecutables((event) => {
        events.push(event);
        if (event.peId === peId && event.kind === "exited") heard(event);
      });
      try {
        const id = await prepared(crashingFor(peId, volume));
        await backend.start(id);
        const event = await within(WAIT_MS, `an "exited" event for ${peId}`, exited);
        expect(event.reason).not.toBe("");
        await backend.remove(id);
      } finally {
        stream.close();
      }
      expect(await within(WAIT_MS, "the event stream's end after close", stream.ended)).toBeUndefined();
      expect(events.every((e) => typeof e.peId === "string" && ["exited", "oom", "unhealthy", "removed"].includes(e.kind))).toBe(true);
    });

    test("events: an executable reseat stops is reported as `exited` too (events are hints: the controller re-reads)", async () => {
      const peId = pe("evstop");
      const volume = await claimed(peId);
      const desired = desiredFor(peId, volume);
      const id = await prepared(desired);
      await backend.start(id);
      await backend.waitReady(id, desired);
      let heard!: (event: ExecutableEvent) => void;
      const exited = new Promise<ExecutableEvent>((resolve) => (heard = resolve));
      const stream = await backend.watchExecutables((event) => {
        if (event.peId === peId && event.kind === "exited") heard(event);
      });
      try {
        await backend.stop(id, desired.stop);
        await within(WAIT_MS, `an "exited" event for ${peId} after stop`, exited);
      } finally {
        stream.close();
      }
      await backend.remove(id);
    });

    // --- images -------------------------------------------------------------------------------------

    test("images: resolveImage of an image the engine has resolves it; of an absent one it pulls nothing", async () => {
      const present = await backend.resolveImage(engine.images.ready);
      expect(present).toEqual({ kind: "resolved", imageId: readyImageId });
      // An image the engine has: ensureImage names the same id (and pulls nothing).
      expect(await backend.ensureImage(engine.images.ready)).toBe(readyImageId);
      const absent = await backend.resolveImage(engine.images.absent);
      // An engine whose nodes pull images themselves (Kubernetes) names the reference itself as the
      // identity; the others never invent an id for an image they lack.
      if (absent.kind === "resolved") expect(absent.imageId).toBe(engine.images.absent);
      else expect(["registry", "unresolved"]).toContain(absent.kind);
      // Read-only: asking again finds the engine as before (nothing was pulled).
      expect((await backend.resolveImage(engine.images.absent)).kind).toBe(absent.kind);
    });

    // --- standby (handover "standby": the successor starts beside the serving executable, parked) --------

    describe("standby", () => {
      /** Polls `read` until `done` holds for its value (bounded by WAIT_MS; a bound, not a measurement). */
      const until = async <T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> => {
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const value = await read();
          if (done(value)) return value;
          if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS / 1000} s (last: ${JSON.stringify(value)})`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      /** A serving generation 1 of a standby-aware workload (the session service on the state library). */
      const serving = async (suffix: string): Promise<{ peId: string; volume: string; desired: ExecutableDesired; id: string }> => {
        const peId = pe(suffix);
        const volume = await claimed(peId);
        const owner = await backend.imageUser?.(statefulImageId);
        if (owner) await backend.ownState(volume, owner);
        await backend.recordGeneration({ peId, generation: 1, volume, updatedAt: new Date().toISOString() }, owner);
        const desired = desiredFor(peId, volume, { imageRef: engine.images.stateful, imageId: statefulImageId, commitIntervalMs: 1000, handover: "standby" });
        const id = await prepared(desired, 1);
        await backend.start(id);
        await backend.waitReady(id, desired);
        await engine.workloadReports?.(desired, 1);
        await until(
          "generation 1 serving",
          () => backend.readWorkloadStatus(volume),
          (s) => s?.generation === 1 && s.phase === "serving",
        );
        return { peId, volume, desired, id };
      };

      test("standby: a successor started beside the serving executable parks (on its host); readWorkloadStatus stays the writer's; the writer's stop hands over", async () => {
        const first = await serving("standby");
        const next = { ...first.desired, env: { ...first.desired.env, RELEASE: "2" } };
        const id = await prepared(next, 2);
        // Started while generation 1 runs on the volume: nothing refuses or waits for the volume.
        await backend.start(id);
        const parked = await until(
          "generation 2 parked",
          () => backend.readStandbyStatus(id, next, 2),
          (s) => s !== undefined,
        );
        expect(parked).toMatchObject({ peId: first.peId, generation: 2, phase: "parked" });
        expect(await backend.readWorkloadStatus(first.volume)).toMatchObject({ generation: 1, phase: "serving" });
        // The parked report is of its generation only.
        expect(await backend.readStandbyStatus(id, next, 3)).toBeUndefined();
        // Both run on the volume, on one host (a multi-host engine puts the standby where the volume is mounted).
        const [old, standby] = [await backend.inspectExecutable(first.id), await backend.inspectExecutable(id)];
        expect(old?.running && standby?.running).toBe(true);
        expect(standby?.host).toBe(old?.host);
        expect((await backend.runningOnVolume(first.volume)).map((h) => h.id).sort()).toEqual([first.id, id].sort());

        await backend.stop(first.id, first.desired.stop);
        await until(
          "generation 2 serving",
          () => backend.readWorkloadStatus(first.volume),
          (s) => s?.generation === 2 && s.phase === "serving",
        );
        await backend.waitReady(id, next);
        expect(await backend.readStandbyStatus(id, next, 2)).toBeUndefined();
        await backend.remove(first.id);
        await backend.stop(id, next.stop);
        await backend.remove(id);
      });

      test("standby: a successor that exits at start never reports parked; removing it leaves the writer serving, untouched", async () => {
        const first = await serving("badstandby");
        const bad = { ...crashingFor(first.peId, first.volume), handover: "standby" as const };
        const id = await prepared(bad, 2);
        await backend.start(id);
        await until(
          "the standby to exit",
          () => backend.inspectExecutable(id),
          (e) => e !== undefined && !e.running && e.state !== "created",
        );
        expect(await backend.readStandbyStatus(id, bad, 2)).toBeUndefined();
        await backend.remove(id);
        expect(await backend.inspectExecutable(first.id)).toMatchObject({ running: true });
        expect(await backend.readWorkloadStatus(first.volume)).toMatchObject({ generation: 1, phase: "serving" });
        expect((await backend.listExecutables(first.peId)).map((e) => e.id)).toEqual([first.id]);
        await backend.stop(first.id, first.desired.stop);
        await backend.remove(first.id);
      });
    });
  });
}

/** The promise's value, or a failure naming what did not happen within `ms` (a bound, never a measurement). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
