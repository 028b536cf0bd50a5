// Leases: a never-started container per lease (the engine's unique names make taking one atomic);
// renewals are a counter in a file inside it, which observers watch move.
import Dockerode from "dockerode";
import { LABELS, LeaseRecord } from "../backend";
import { poll } from "../../util/retry";
import { packArchive } from "./archive";
import { DockerEngine, HELPER_IMAGE } from "./engine";
import { hasStatus } from "./engineCall";

const LEASE_FILE = "lease.json";

export class DockerLeases extends DockerEngine {
  /**
   * A lease is a never-started container named reseat-lease-<name>: the engine's unique container
   * names make taking it atomic for every process that talks to this engine, on any host. Its id is
   * the holding's token; renewals bump a counter in a file inside it (the archive endpoint), which
   * observers watch for movement. `docker container prune` removes it like any stopped container: the
   * holder's next renewal finds it gone and the holder stops acting (see the README).
   */
  async tryAcquireLease(
    name: string,
    holder: string,
    leaseMs: number,
  ): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }> {
    await this.ensureHelperImage();
    const containerName = leaseContainer(name);
    // Bounded: a lease released between our create and our look is retried a few times, then it is an error.
    const race = { what: `lease ${containerName} (released and taken again under us)`, attempts: 10, pauseMs: (n: number) => 10 * (n + 1) };
    return poll<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }>(race, async () => {
      try {
        const created = await this.call(`create lease ${containerName}`, (abortSignal) =>
          this.docker.createContainer({
            name: containerName,
            Image: HELPER_IMAGE,
            Cmd: ["/reseat-helper"],
            Labels: { [LABELS.managed]: "true", [LABELS.role]: "lease", [LABELS.leaseHolder]: holder, [LABELS.leaseMs]: String(leaseMs) },
            HostConfig: { NetworkMode: "none" },
            abortSignal,
          } as Dockerode.ContainerCreateOptions),
        );
        const lease: LeaseRecord = { name, holder, token: created.id, leaseMs, renewals: 0, renewedAt: new Date().toISOString() };
        await this.writeLeaseFile(lease).catch(() => undefined);
        return { acquired: true, lease };
      } catch (error) {
        if (!hasStatus(error, 409)) throw error;
      }
      const current = await this.readLease(name);
      if (current) return { acquired: false, current };
      return undefined; // released between our create and our look: try again
    });
  }

  async renewLease(lease: LeaseRecord): Promise<boolean> {
    lease.renewals += 1;
    lease.renewedAt = new Date().toISOString();
    try {
      await this.writeLeaseFile(lease);
      return true;
    } catch (error) {
      if (hasStatus(error, 404)) return false;
      throw error;
    }
  }

  async holdsLease(lease: LeaseRecord): Promise<boolean> {
    const c = await this.inspectContainer(leaseContainer(lease.name));
    return c?.Id === lease.token;
  }

  async releaseLease(lease: LeaseRecord): Promise<void> {
    await this.remove(lease.token);
  }

  async readLease(name: string): Promise<LeaseRecord | undefined> {
    const c = await this.inspectContainer(leaseContainer(name));
    if (!c) return undefined;
    let renewals = 0;
    let renewedAt = "";
    let text: string | undefined;
    try {
      text = (await this.readContainerFile(c.Id, `/${LEASE_FILE}`))?.toString("utf8");
    } catch (error) {
      // A lease removed while we read it answers 500 ("RWLayer … is unexpectedly nil") on some engines.
      if (!(await this.inspectContainer(c.Id))) return undefined;
      // Docker 20.10 cannot read files of a never-started container after an engine restart ("driver
      // overlay2 is returning inconsistent paths"); its holder cannot renew it either. An unreadable
      // count never moves, so waiters take the lease over after one lease of standstill.
      return {
        name,
        holder: c.Config.Labels[LABELS.leaseHolder] ?? "",
        token: c.Id,
        leaseMs: Number(c.Config.Labels[LABELS.leaseMs] ?? 0),
        renewals: -1,
        renewedAt: "",
      };
    }
    if (text) {
      // A damaged count reads like an unreadable one (-1, never moves): waiters take the lease over after
      // one lease of standstill, instead of every reader of this lease failing.
      const parsed = parseLeaseFile(text);
      renewals = parsed.renewals;
      renewedAt = parsed.renewedAt;
    } else if (!(await this.inspectContainer(c.Id))) {
      // Removed after the inspect; otherwise taken before its first renewal file: "as is".
      return undefined;
    }
    return {
      name,
      holder: c.Config.Labels[LABELS.leaseHolder] ?? "",
      token: c.Id,
      leaseMs: Number(c.Config.Labels[LABELS.leaseMs] ?? 0),
      renewals,
      renewedAt,
    };
  }

  private async writeLeaseFile(lease: LeaseRecord): Promise<void> {
    const archive = await packArchive([
      { name: LEASE_FILE, content: Buffer.from(JSON.stringify({ renewals: lease.renewals, renewedAt: lease.renewedAt })), mode: 0o644 },
    ]);
    await this.putArchive(lease.token, "/", archive);
  }
}

function leaseContainer(name: string): string {
  return `reseat-lease-${name}`;
}

function parseLeaseFile(text: string): { renewals: number; renewedAt: string } {
  try {
    const parsed = JSON.parse(text) as { renewals?: unknown; renewedAt?: unknown } | null;
    const renewals = parsed?.renewals ?? 0;
    const renewedAt = parsed?.renewedAt ?? "";
    if (typeof renewals === "number" && Number.isSafeInteger(renewals) && typeof renewedAt === "string") return { renewals, renewedAt };
  } catch {
    // fall through: damaged
  }
  return { renewals: -1, renewedAt: "" };
}
