// One pod watch per backend (namespace), shared by every wait on a pod (waitReady, a stop or remove
// waiting for the pod to end): a fleet waiting for k pods at once holds one watch on the API server
// instead of k pollers. The watch only says WHEN to look: a wait reads its pod from the watch's cache
// while the watch runs, and from the API server itself when the watch has not seen the pod, is not
// running, or has said nothing about the pod for a while — so a late or lost event costs time, never
// a wrong answer.
import type { CoreV1Api, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { LABELS } from "../backend";
import { watchWithDeadlines } from "./apiDeadline";

/** No follower for this long: the watch is closed (a process that is done is not kept alive by it). */
const LINGER_MS = 1_000;
/** A watch that failed is started again no sooner than this (by the next wait that needs it). */
const RESTART_PAUSE_MS = 1_000;

export interface PodFollower {
  /**
   * The pod as the watch last saw it: a pod; null once the watch saw it deleted; undefined when the
   * watch cannot say (not running, or no event of this pod yet) — read the API server then.
   */
  seen(): V1Pod | null | undefined;
  /** Whether the watch runs now (else a wait polls the API server). */
  watching(): boolean;
  /** Resolves true on the pod's next event (or at once if one came since the last `seen`), false after `ms` without one. */
  changed(ms: number): Promise<boolean>;
  close(): void;
}

export class PodWatch {
  private readonly pods = new Map<string, V1Pod | null>();
  /** Events seen per pod name: a follower knows whether one came since it last looked. */
  private readonly versions = new Map<string, number>();
  private readonly waiters = new Map<string, Set<(event: boolean) => void>>();
  private state: "off" | "starting" | "on" = "off";
  private handle?: { abort(): void };
  private followers = 0;
  private linger?: NodeJS.Timeout;
  private failedAt = 0;
  /** Which start is current: a watch of an earlier start (stopped meanwhile) no longer touches the cache. */
  private run = 0;

  constructor(
    private readonly config: () => KubeConfig,
    private readonly core: () => CoreV1Api,
    private readonly namespace: string,
  ) {}

  follow(name: string): PodFollower {
    this.followers++;
    clearTimeout(this.linger);
    this.ensure();
    let closed = false;
    let looked = -1;
    return {
      seen: () => {
        looked = this.versions.get(name) ?? 0;
        return this.state === "on" ? this.pods.get(name) : undefined;
      },
      watching: () => this.state === "on",
      changed: (ms) =>
        new Promise<boolean>((resolve) => {
          if ((this.versions.get(name) ?? 0) > looked) return resolve(true);
          const set = this.waiters.get(name) ?? new Set();
          this.waiters.set(name, set);
          const done = (event: boolean) => {
            clearTimeout(timer);
            set.delete(done);
            if (!set.size) this.waiters.delete(name);
            resolve(event);
          };
          const timer = setTimeout(() => done(false), ms);
          set.add(done);
        }),
      close: () => {
        if (closed) return;
        closed = true;
        if (--this.followers === 0) {
          this.linger = setTimeout(() => this.stop(), LINGER_MS);
          this.linger.unref();
        }
      },
    };
  }

  private ensure(): void {
    if (this.state !== "off" || Date.now() - this.failedAt < RESTART_PAUSE_MS) return;
    this.state = "starting";
    const run = this.run + 1;
    void this.start().catch(() => {
      if (run === this.run) this.ended(true);
    });
  }

  /** From a list (the cache complete as of its resourceVersion), then every change after it. */
  private async start(): Promise<void> {
    const run = ++this.run;
    const selector = `${LABELS.role}=executable`;
    const list = await this.core().listNamespacedPod({ namespace: this.namespace, labelSelector: selector });
    if (run !== this.run) return;
    this.pods.clear();
    for (const pod of list.items) if (pod.metadata?.name) this.pods.set(pod.metadata.name, pod);
    let over = false;
    const handle = await watchWithDeadlines(
      this.config(),
      `/api/v1/namespaces/${this.namespace}/pods`,
      { labelSelector: selector, resourceVersion: list.metadata?.resourceVersion },
      (phase, object) => {
        const name = (object as V1Pod).metadata?.name;
        if (!name || run !== this.run) return;
        this.pods.set(name, phase === "DELETED" ? null : (object as V1Pod));
        this.versions.set(name, (this.versions.get(name) ?? 0) + 1);
        for (const wake of [...(this.waiters.get(name) ?? [])]) wake(true);
      },
      (error) => {
        over = true;
        if (run === this.run) this.ended(!!error);
      },
    );
    if (run !== this.run)
      handle.abort(); // stopped (or started again) while connecting
    else if (!over) {
      this.handle = handle;
      this.state = "on";
    }
  }

  /** The watch ended (the server's timeout, a failure): waits read the API server; the next wait restarts it. */
  private ended(failed: boolean): void {
    this.state = "off";
    this.handle = undefined;
    this.pods.clear();
    this.versions.clear();
    if (failed) this.failedAt = Date.now();
    for (const set of [...this.waiters.values()]) for (const wake of [...set]) wake(true);
    if (this.followers > 0 && !failed) this.ensure();
  }

  private stop(): void {
    if (this.followers > 0) return;
    this.run++;
    this.handle?.abort();
    this.handle = undefined;
    this.state = "off";
    this.pods.clear();
    this.versions.clear();
  }
}
