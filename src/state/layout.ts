import * as path from "node:path";

/** Where everything lives inside the state volume (the mount path). */
export interface StatePaths {
  stateDir: string;
  /** Files shared with the provider. */
  metaFile: string;
  controlFile: string;
  statusFile: string;
  /** The library's own data. */
  dataDir: string;
  journalFile: string;
  snapshotFile: string;
}

/**
 * RESEAT_CONTROL_FILE names the control file elsewhere when the engine cannot write into the volume
 * (Kubernetes mounts it from a ConfigMap).
 */
export function statePaths(stateDir: string, env: NodeJS.ProcessEnv = process.env): StatePaths {
  const reseatDir = path.join(stateDir, ".reseat");
  const dataDir = path.join(stateDir, "data");
  return {
    stateDir,
    metaFile: path.join(reseatDir, "meta.json"),
    controlFile: env.RESEAT_CONTROL_FILE || path.join(reseatDir, "control.json"),
    statusFile: path.join(reseatDir, "status.json"),
    dataDir,
    journalFile: path.join(dataDir, "journal.log"),
    snapshotFile: path.join(dataDir, "snapshot.json"),
  };
}
