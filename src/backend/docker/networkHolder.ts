// A PE's network holder: a tiny container that owns the network namespace (IP address, published host
// ports) of a standby-handover bridge PE across generations. Its executables join it (NetworkMode
// container:<holder>) instead of publishing ports themselves, so the old executable and its standby
// successor share one IP and one port set: the standby binds the port only once it serves, when the old
// one has exited. Without it the standby could not even be created while the old one holds the host ports.
//
// The holder runs an image reseat makes on the engine itself (there is no registry to pull from): a
// static ELF of a few dozen bytes that only pauses, packed FROM scratch and built through the engine's
// build API. Only PEs with handover "standby" AND network "bridge" get one: every other spec, and the
// containers made from it, stay exactly as before.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import Dockerode from "dockerode";
import { ExecutableDesired, LABELS, ObservedExecutable } from "../backend";
import { packArchive } from "./archive";
import { ContainerInspect, ContainerSummary, DockerEngine } from "./engine";
import { hasStatus } from "./engineCall";

/** The holder's image, built on the engine from bytes reseat ships. Bump the tag when the bytes change. */
export const NETWORK_HOLDER_IMAGE = "reseat/netholder:1";
/** The holder container's role label: never an executable (listExecutables, events and volume scans skip it). */
export const NETWORK_HOLDER_ROLE = "network-holder";
/** On an executable: the holder whose network it joins. On a holder: its own name. */
export const NETWORK_HOLDER_LABEL = "io.reseat.network-holder";
/** On a holder: the published ports it was made with (JSON), so a holder of other ports is never joined. */
const NETWORK_PORTS_LABEL = "io.reseat.network-ports";

/** Whether a PE's executables run in a network holder: standby hand-over on the bridge network only. */
export function usesNetworkHolder(desired: Pick<ExecutableDesired, "network" | "handover">): boolean {
  return desired.network === "bridge" && desired.handover === "standby";
}

/** The published ports in a stable text form: what a holder is made with and compared by. */
function portsKey(desired: Pick<ExecutableDesired, "ports">): string {
  const ports = desired.ports.map((p) => ({ container: p.container, protocol: p.protocol, hostIp: p.hostIp, host: p.host ?? 0 }));
  ports.sort((a, b) => a.container - b.container || a.protocol.localeCompare(b.protocol) || a.hostIp.localeCompare(b.hostIp) || a.host - b.host);
  return JSON.stringify(ports);
}

/**
 * The holder's name: per PE and per published port set. A spec that changes its ports gets a new holder
 * (the old holder keeps its ports until no running executable is in it), never a holder of other ports.
 */
export function networkHolderName(desired: Pick<ExecutableDesired, "peId" | "ports">): string {
  return `reseat-${desired.peId}-net-${createHash("sha256").update(portsKey(desired)).digest("hex").slice(0, 10)}`;
}

/**
 * Why a standby successor of `running` cannot be started beside it, or undefined when it can. The
 * standby needs the host ports the running executable holds: only a running executable inside the
 * holder the successor joins leaves them to it (an executable of a bridge PE upgraded from staged
 * publishes them itself; one whose holder publishes other ports keeps them in that holder).
 */
export function standbyNetworkBlocker(running: ObservedExecutable, desired: ExecutableDesired): string | undefined {
  if (!usesNetworkHolder(desired)) return undefined;
  if (!running.networkHolder)
    return `${running.name} publishes its ports itself (made before the PE's network holder), so its successor cannot start beside it`;
  if (running.networkHolder !== networkHolderName(desired))
    return `${running.name} runs in the network holder of other published ports (${running.networkHolder})`;
  return undefined;
}

/** Exposed ports and host bindings of a spec, as the engine's create call takes them. */
export function publishedPorts(desired: Pick<ExecutableDesired, "ports">): {
  exposed: Record<string, object>;
  bindings: Record<string, { HostIp: string; HostPort: string }[]>;
} {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of desired.ports) {
    const key = `${p.container}/${p.protocol}`;
    exposed[key] = {};
    // As executables always had it: one binding per container port (the last mapping of it).
    bindings[key] = [{ HostIp: p.hostIp, HostPort: p.host ? String(p.host) : "" }];
  }
  return { exposed, bindings };
}

// --- the holder's program ------------------------------------------------------------------------

/**
 * The machine code of "wait for a signal, forever", per CPU. A caught signal never comes (nothing is
 * caught), and PID 1 ignores SIGTERM; reseat removes the holder with force (SIGKILL), which needs no handler.
 */
const X86_64 = {
  machine: 62, // EM_X86_64
  code: [
    ...[0xb8, 0x22, 0x00, 0x00, 0x00], // mov eax, 34 (pause)
    ...[0x0f, 0x05], //                   syscall
    ...[0xeb, 0xf7], //                   jmp back to mov
  ],
};
const AARCH64 = {
  machine: 183, // EM_AARCH64 (no pause syscall: ppoll(NULL, 0, NULL, NULL) waits the same way)
  code: [
    0xd2800000, // mov x0, #0
    0xd2800001, // mov x1, #0
    0xd2800002, // mov x2, #0
    0xd2800003, // mov x3, #0
    0xd2800928, // mov x8, #73 (ppoll)
    0xd4000001, // svc #0
    0x17fffffa, // b back to the first mov
  ].flatMap((word) => [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, (word >>> 24) & 0xff]),
};
/** By /info's Architecture (uname -m; some engines say arm64). */
const PAUSE_CODE: Record<string, { machine: number; code: number[] }> = { x86_64: X86_64, aarch64: AARCH64, arm64: AARCH64 };
/** The CPU names /info's Architecture reports that the holder's program exists for. */
export const NETWORK_HOLDER_ARCHITECTURES = ["x86_64", "aarch64"];

/**
 * A static ELF64 executable (little-endian) of one loadable segment: the ELF header (64 bytes), one
 * program header (56 bytes), then the code, all loaded read+execute at 0x400000.
 */
export function pauseElf(architecture: string): Buffer {
  const cpu = PAUSE_CODE[architecture];
  if (!cpu) {
    throw new Error(
      `reseat: the engine's architecture "${architecture}" has no network holder program (known: ${NETWORK_HOLDER_ARCHITECTURES.join(", ")}); ` +
        `use handover "staged" or network "host" for this PE`,
    );
  }
  const base = 0x400000;
  const headers = 64 + 56;
  const size = headers + cpu.code.length;
  const elf = Buffer.alloc(size);
  // ELF header
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // magic, 64-bit, little-endian, version 1, System V ABI
  elf.writeUInt16LE(2, 16); // e_type: ET_EXEC
  elf.writeUInt16LE(cpu.machine, 18);
  elf.writeUInt32LE(1, 20); // e_version
  elf.writeBigUInt64LE(BigInt(base + headers), 24); // e_entry: the code right after the headers
  elf.writeBigUInt64LE(64n, 32); // e_phoff
  elf.writeBigUInt64LE(0n, 40); // e_shoff: no sections
  elf.writeUInt32LE(0, 48); // e_flags
  elf.writeUInt16LE(64, 52); // e_ehsize
  elf.writeUInt16LE(56, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  elf.writeUInt16LE(64, 58); // e_shentsize
  elf.writeUInt16LE(0, 60); // e_shnum
  elf.writeUInt16LE(0, 62); // e_shstrndx
  // Program header: PT_LOAD of the whole file
  elf.writeUInt32LE(1, 64); // p_type: PT_LOAD
  elf.writeUInt32LE(5, 68); // p_flags: R + X
  elf.writeBigUInt64LE(0n, 72); // p_offset
  elf.writeBigUInt64LE(BigInt(base), 80); // p_vaddr
  elf.writeBigUInt64LE(BigInt(base), 88); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), 96); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), 104); // p_memsz
  elf.writeBigUInt64LE(0x10000n, 112); // p_align: 64 KiB, right for 4 KiB and 64 KiB pages alike
  elf.set(cpu.code, headers);
  return elf;
}

/** The build context of the holder's image: the program and a FROM scratch Dockerfile. */
export function networkHolderContext(architecture: string): Promise<Buffer> {
  const dockerfile = [
    "# reseat's network holder: owns a PE's network namespace across generations; only pauses.",
    "FROM scratch",
    "COPY pause /pause",
    `LABEL ${LABELS.managed}="true" ${LABELS.role}="${NETWORK_HOLDER_ROLE}-image"`,
    'ENTRYPOINT ["/pause"]',
    "",
  ].join("\n");
  return packArchive([
    { name: "Dockerfile", content: Buffer.from(dockerfile) },
    { name: "pause", content: pauseElf(architecture), mode: 0o755 },
  ]);
}

interface BuildEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

// --- the holder on the engine --------------------------------------------------------------------

export class DockerNetworkHolders extends DockerEngine {
  private architecture?: Promise<string>;

  /** The holder's image on this engine, built from reseat's bytes when absent. `tag`: tests build their own. */
  async ensureImage(tag = NETWORK_HOLDER_IMAGE): Promise<string> {
    const present = await this.imageId(tag);
    if (present) return present;
    const architecture = await this.engineArchitecture();
    const context = await networkHolderContext(architecture);
    await this.call(`build the network holder image ${tag}`, async (abortSignal) => {
      const stream = await this.docker.buildImage(Readable.from([context]), { t: tag, rm: true, forcerm: true, abortSignal } as Dockerode.ImageBuildOptions);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (error: Error | null, output: BuildEvent[]) => {
          const failed = output?.find((event) => event.error);
          if (error || failed) reject(error ?? new Error(failed?.errorDetail?.message ?? failed?.error));
          else resolve();
        }),
      );
    });
    const built = await this.imageId(tag);
    if (!built) throw new Error(`reseat: the network holder image ${tag} was built but the engine (${this.connection.address}) does not list it`);
    return built;
  }

  private engineArchitecture(): Promise<string> {
    this.architecture ??= this.call("GET /info", async (abortSignal) => {
      const info = (await (this.docker as unknown as { info(options: object): Promise<{ Architecture: string }> }).info({ abortSignal })) as {
        Architecture: string;
      };
      return info.Architecture;
    });
    this.architecture.catch(() => (this.architecture = undefined));
    return this.architecture;
  }

  /**
   * The PE's holder for the desired ports, created (not started) when absent: prepare's part. It is
   * started only when an executable in it starts (ensureRunning), so preparing never takes a host port.
   */
  async ensureCreated(desired: ExecutableDesired, image = NETWORK_HOLDER_IMAGE): Promise<string> {
    const name = networkHolderName(desired);
    if (await this.inspectContainer(name)) return name;
    const imageId = await this.ensureImage(image);
    const { exposed, bindings } = publishedPorts(desired);
    const options: Dockerode.ContainerCreateOptions = {
      name,
      Image: imageId,
      Labels: {
        [LABELS.managed]: "true",
        [LABELS.role]: NETWORK_HOLDER_ROLE,
        [LABELS.peId]: desired.peId,
        ...(desired.owner ? { [LABELS.owner]: desired.owner } : {}),
        [NETWORK_HOLDER_LABEL]: name,
        [NETWORK_PORTS_LABEL]: portsKey(desired),
      },
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        NetworkMode: "bridge",
        // reseat starts it when an executable starts in it; the engine never restarts it on its own.
        RestartPolicy: { Name: "no" },
        Memory: 8 * 1024 * 1024,
      },
    };
    try {
      await this.call(`create the network holder ${name}`, (abortSignal) =>
        this.docker.createContainer({ ...options, abortSignal } as Dockerode.ContainerCreateOptions),
      );
    } catch (error) {
      // 409: a racing prepare (the controller, a second `up`) made it first: the same holder.
      if (!hasStatus(error, 409)) throw error;
    }
    return name;
  }

  /**
   * Before an executable in `holder` starts: the holder runs (it publishes the ports now). A stale
   * holder of the same PE (other ports) that no running executable is in goes first: it holds ports
   * the new one may publish too.
   */
  async ensureRunning(holder: string): Promise<void> {
    const c = await this.inspectContainer(holder);
    if (!c) throw new Error(`reseat: the network holder ${holder} is gone; prepare the executable again`);
    if (c.State.Running) return;
    const peId = c.Config.Labels[LABELS.peId] ?? "";
    await this.removeIdleHolders(peId, holder);
    try {
      await this.call(`start the network holder ${holder}`, (abortSignal) => this.docker.getContainer(holder).start({ abortSignal }));
    } catch (error) {
      if (!hasStatus(error, 304)) throw error; // 304: a racing start got there first
    }
  }

  /** Where the holder's network is: what an executable in it is reached at (published ports, IP). */
  inspectHolder(holder: string): Promise<ContainerInspect | undefined> {
    return this.inspectContainer(holder);
  }

  /** Every holder of a PE (any state). */
  async holdersOf(peId: string): Promise<ContainerSummary[]> {
    return (await this.call(`list the network holders of PE ${peId}`, (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: [`${LABELS.role}=${NETWORK_HOLDER_ROLE}`, `${LABELS.peId}=${peId}`] }, abortSignal }),
    )) as unknown as ContainerSummary[];
  }

  private async hasRunningMember(holder: string): Promise<boolean> {
    const members = (await this.call(`list the executables in ${holder}`, (abortSignal) =>
      this.docker.listContainers({
        filters: { label: [`${LABELS.role}=executable`, `${NETWORK_HOLDER_LABEL}=${holder}`], status: ["running", "restarting", "paused"] },
        abortSignal,
      }),
    )) as unknown as ContainerSummary[];
    return members.length > 0;
  }

  /**
   * Removes the PE's holders that no running executable is in (but `keep`): they hold host ports that a
   * starting executable needs. Returns their names.
   */
  async removeIdleHolders(peId: string, keep?: string): Promise<string[]> {
    const removed: string[] = [];
    for (const holder of await this.holdersOf(peId)) {
      const name = (holder.Names[0] ?? "").replace(/^\//, "");
      if (name === keep || (await this.hasRunningMember(name))) continue;
      await this.remove(holder.Id);
      removed.push(name);
    }
    return removed;
  }

  /** Removes every holder of a PE (with force: its PID 1 ignores SIGTERM). Its executables are gone already. */
  async removeHolders(peId: string): Promise<string[]> {
    const holders = await this.holdersOf(peId);
    for (const holder of holders) await this.remove(holder.Id);
    return holders.map((h) => (h.Names[0] ?? "").replace(/^\//, ""));
  }
}
