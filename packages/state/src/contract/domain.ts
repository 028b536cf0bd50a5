// The domain's words, shared by the workload's state library, the pure plan, the replacement routine and
// every engine: what a PE is asked to run (ExecutableDesired) and the parts of it the workload sees.
// Types only (and their constants): no engine, no I/O.

/** A processing element's id: names one PE per engine; its executables, volume and records carry it. */
export type PeId = string;

/**
 * An executable's generation: the fencing token, fixed when it is created, one more than the last. The
 * state library refuses writes (and the store commits) of a generation older than the newest recorded.
 */
export type Generation = number;

/** Numeric owner of what reseat writes into a volume (and the user a workload runs as). */
export interface FileOwner {
  uid: number;
  gid: number;
}

export interface FailureBackoff {
  /** Delay before the 2nd consecutive re-creation (the 1st is immediate); doubles each time. */
  initialMs: number;
  maxMs: number;
  /** Running this long without failing resets the count. */
  resetAfterMs: number;
}

export const DEFAULT_FAILURE_BACKOFF: FailureBackoff = { initialMs: 1000, maxMs: 60_000, resetAfterMs: 120_000 };

/** The directory store's volume when its spec names none (PEs share it, each in its own folder). */
export const DEFAULT_STORE_VOLUME = "reseat-store";

/** The persistent store as the executable sees it. The password only ever travels as a file. */
export type StoreDesired =
  | { kind: "none" }
  | { kind: "directory"; volume?: string; hostPath?: string; keep: number; allowEmptyStart?: boolean }
  | { kind: "postgres"; host: string; port: number; database: string; user: string; table: string; keep: number; allowEmptyStart?: boolean; password: string };

export interface KubernetesPodDesired {
  /** Node labels every pod requires, beside the node that holds the claim. */
  nodeSelector?: Record<string, string>;
  /** The workload's status endpoint, read through the API server's pod proxy (commit outputs). */
  status?: { port: number; path: string };
}

/**
 * Where a PE runs, as its spec says. Connection secrets never travel in here: a Kubernetes PE names a
 * namespace and (optionally) a context of the ambient kubeconfig, never the kubeconfig itself.
 */
export type EngineTarget = { kind: "docker"; host?: string } | { kind: "kubernetes"; namespace: string; context?: string };

/** The desired executable, fully resolved (image id known), as the provider and controller pass it. */
export interface ExecutableDesired {
  peId: PeId;
  /** Who owns the PE's state volume: "<project>/<stack>/<peId>" (absent in state written before claims). */
  owner?: string;
  imageRef: string;
  imageId: string;
  command?: string[];
  env: Record<string, string>;
  ports: { container: number; host?: number; hostIp: string; protocol: "tcp" | "udp" }[];
  network: "bridge" | "host" | "none";
  resources: { memoryMiB?: number; cpus?: number };
  volumeName: string;
  mountPath: string;
  stop: { signal: string; graceSeconds: number };
  readiness?: { httpGet?: { port: number; path: string }; logLine?: string; timeout: number };
  commitIntervalMs: number;
  /** Where the workload commits its state; never the state volume. */
  store: StoreDesired;
  /** How the failure controller paces re-creation after repeated failures. */
  failureBackoff?: FailureBackoff;
  /** When a new executable does not become ready: serve the previous spec again (default) or leave the PE stopped. */
  onFailedReplacement?: "revert" | "leave-stopped";
  /**
   * How a replacement hands the volume over: "standby" starts the successor before the gap, parked on the
   * volume's writer lock (RESEAT_STANDBY=1), and stops the old executable only once it parked; absent is
   * "staged" (created before the gap, started in it). Absent keeps the spec hashes of older specs.
   */
  handover?: "standby";
  /** Which engine runs the PE (absent: the local Docker Engine, or DOCKER_HOST). */
  engine?: EngineTarget;
  /** Pod-level settings of a PE on Kubernetes (absent on Docker). */
  kubernetes?: KubernetesPodDesired;
  /** The workload's user (spec runAsUser/runAsGroup); absent: the image's USER. */
  user?: FileOwner;
  /**
   * The Pulumi resource (an Executable or a Fleet) this executable serves: a token that resource's
   * `create` mints, carried by every executable made on its behalf (controller re-creations, reverts).
   * A replaced resource's `delete` removes only executables of its own token, so a forced replacement
   * never takes down what its successor runs. Absent on executables made before 0.4. Not part of the
   * spec hash: it says who declared an executable, not what runs.
   */
  declaredBy?: string;
  /**
   * Env names whose values the program gave as Pulumi secrets (sorted). The engine's records of the
   * spec (labels, annotations, the Kubernetes record) carry those values blanked (SECRET_ENV_MARKER);
   * the workload still gets them (Docker: the container's environment; Kubernetes: a Secret). Absent
   * when no env value is secret, as on executables made before the field existed.
   */
  secretEnv?: string[];
}

/** An image reference, resolved read-only (Backend.resolveImage). */
export type ImageResolution =
  /** The id executables are created from: an image the engine has (Kubernetes: the reference itself). */
  | { kind: "resolved"; imageId: string }
  /** Not on the engine; the registry's manifest digest for it (not an image id: only a pull gives that). */
  | { kind: "registry"; digest: string }
  /** Not on the engine, and the registry did not say (unreachable, unauthorized, no such tag): why. */
  | { kind: "unresolved"; reason: string };

/** Which engine a PE lives on: recorded in state and compared on every operation. */
export interface EngineIdentity {
  kind: "docker" | "kubernetes" | "fake";
  /** Stable id of the engine itself (Docker: /info ID), not of the path used to reach it. */
  id: string;
  /** How it was reached, as the user wrote it (unix:///var/run/docker.sock, tcp://…, ssh://…). */
  address: string;
  /** The host executables run on (Docker: the engine's host name). */
  name: string;
}

/** What a state volume is claimed for: exactly one owner, ever. */
export interface VolumeClaim {
  name: string;
  /** Docker: the volume driver; Kubernetes: the StorageClass ("" for the cluster's default). */
  driver: string;
  peId: PeId;
  owner: string;
  /** Kubernetes: the requested size ("1Gi"). */
  size?: string;
}
