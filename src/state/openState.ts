import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Committer } from "./committer";
import { resolveConfig, resolveStateDir, type OpenStateOptions } from "./config";
import { StaleGenerationError } from "./errors";
import { VolumeGenerationFence } from "./fence";
import { errorMessage, isTempFileOf, writeFileAtomic } from "./fsUtil";
import { statePaths, type StatePaths } from "./layout";
import { LocalState } from "./localState";
import { OpenStateHandle, type StateHandle } from "./stateHandle";
import type { CommitRecord, PersistentStore } from "./store/types";
import { readControlInterval, readMeta, type ResumeSource } from "./volumeFiles";

/**
 * Open the PE's state: recover the volume's journal/snapshot ("local"), else restore the newest valid
 * commit from the store ("persistent"), else start "empty"; then start the periodic committer.
 */
export async function openState(options: OpenStateOptions = {}): Promise<StateHandle> {
  const env = options.env ?? process.env;
  const paths = statePaths(resolveStateDir(options), env);
  const config = resolveConfig(options, paths.stateDir, await readMeta(paths.metaFile));
  const fence = new VolumeGenerationFence(paths.metaFile, config.generation);
  await fence.check(); // a stale executable must not even recover (recovery may truncate the journal)
  if (env.RESEAT_CLAIM_GENERATION === "1") await claimVolumeGeneration(paths, config.peId, config.generation);
  await prepareReseatDir(paths);

  let committer: Committer | null = null;
  const { state: local, recovered } = await LocalState.open(paths, {
    compactAfterBytes: config.compactAfterBytes,
    beforeAppend: async () => {
      if (committer?.fencedBy) throw committer.fencedBy;
      await fence.check();
    },
  });

  try {
    // Claim the generation first, so a stale executable fails before touching the volume.
    const storeState = await inspectStore(config.store, config.generation);
    const restored = recovered.found ? null : await restoreFromStore(config.store, local);
    const resumedFrom: ResumeSource = recovered.found ? "local" : restored ? "persistent" : "empty";
    const resumedSeq = local.seq;
    const handle = new OpenStateHandle(config, paths, local, resumedFrom, resumedSeq);
    committer = new Committer({
      peId: config.peId,
      generation: config.generation,
      store: config.store,
      snapshot: () => local.snapshot(),
      checkFence: () => fence.check(),
      readIntervalMs: async () => (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialIntervalMs: (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialLastCommit: restored ?? storeState.newestCommit,
      initialError: storeState.error,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      onStatusChange: () => handle.writeStatus(),
    });
    handle.attach(committer);
    await handle.writeStatus();
    committer.start();
    return handle;
  } catch (error) {
    await local.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Where no one writes meta.json from outside (Kubernetes: the claim belongs to its pod), the executable
 * records its own generation before it touches the volume: an older executable still running on it
 * (e.g. a force-deleted pod whose container lingers) is fenced off from then on.
 */
async function claimVolumeGeneration(paths: StatePaths, peId: string, generation: number): Promise<void> {
  const meta = await readMeta(paths.metaFile);
  if (meta && meta.generation >= generation) return;
  await fs.mkdir(path.dirname(paths.metaFile), { recursive: true });
  await writeFileAtomic(paths.metaFile, JSON.stringify({ peId, generation, updatedAt: new Date().toISOString() }));
}

/** Create .reseat/ and drop status.json temp files left by a process killed mid-rewrite. */
async function prepareReseatDir(paths: StatePaths): Promise<void> {
  const dir = path.dirname(paths.statusFile);
  await fs.mkdir(dir, { recursive: true });
  for (const name of await fs.readdir(dir)) {
    if (isTempFileOf(name, path.basename(paths.statusFile))) await fs.rm(path.join(dir, name), { force: true });
  }
}

/**
 * The volume holds nothing: restore the store's newest valid commit. Errors reaching the store
 * propagate on purpose: starting empty while a commit exists would later overwrite the real state.
 */
async function restoreFromStore(store: PersistentStore | null, local: LocalState): Promise<CommitRecord | null> {
  const latest = store ? await store.latestValid() : null;
  if (!latest) return null;
  await local.installSnapshot(latest.bytes);
  return latest.record;
}

/**
 * Claim our generation in the store (so a late commit from an older executable is rejected) and find
 * its newest commit for status.json. A store that is merely unreachable does not stop a volume that
 * resumed locally from serving; a newer generation in the store does (this process is a zombie).
 */
async function inspectStore(store: PersistentStore | null, generation: number): Promise<{ newestCommit: CommitRecord | null; error: string | null }> {
  if (!store) return { newestCommit: null, error: null };
  try {
    await store.claimGeneration(generation);
    const newest = (await store.list()).find((listing) => listing.record !== null);
    return { newestCommit: newest?.record ?? null, error: null };
  } catch (error) {
    if (error instanceof StaleGenerationError) throw error;
    return { newestCommit: null, error: `persistent store unavailable at start: ${errorMessage(error)}` };
  }
}
