// The network holder's pure parts: which PEs get one, its name per port set, when a standby cannot start
// beside the serving executable, and the holder's program (a static ELF built from bytes).
import { describe, expect, it } from "vitest";
import type { ExecutableDesired, ObservedExecutable } from "../../../src/backend/backend";
import { networkHolderName, pauseElf, publishedPorts, standbyNetworkBlocker, usesNetworkHolder } from "../../../src/backend/docker/networkHolder";

const desired = (overrides: Partial<ExecutableDesired> = {}): ExecutableDesired => ({
  peId: "web",
  imageRef: "img:1",
  imageId: "sha256:1",
  env: {},
  ports: [{ container: 8080, host: 18080, hostIp: "127.0.0.1", protocol: "tcp" }],
  network: "bridge",
  handover: "standby",
  resources: {},
  volumeName: "reseat-web-state",
  mountPath: "/state",
  stop: { signal: "SIGTERM", graceSeconds: 5 },
  commitIntervalMs: 5000,
  store: { kind: "none" },
  ...overrides,
});
const observed = (overrides: Partial<ObservedExecutable> = {}): ObservedExecutable => ({
  id: "c1",
  name: "reseat-web-g1",
  peId: "web",
  generation: 1,
  specHash: "h",
  volumeName: "reseat-web-state",
  state: "running",
  running: true,
  ...overrides,
});

describe("network holder", () => {
  it("only a standby-handover bridge PE gets one", () => {
    expect(usesNetworkHolder(desired())).toBe(true);
    expect(usesNetworkHolder(desired({ handover: undefined }))).toBe(false);
    expect(usesNetworkHolder(desired({ network: "host" }))).toBe(false);
    expect(usesNetworkHolder(desired({ network: "none" }))).toBe(false);
  });

  it("its name is per PE and per published port set, whatever the order of the ports", () => {
    const a = { container: 8080, host: 18080, hostIp: "127.0.0.1", protocol: "tcp" as const };
    const b = { container: 9090, hostIp: "0.0.0.0", protocol: "udp" as const };
    expect(networkHolderName(desired({ ports: [a, b] }))).toBe(networkHolderName(desired({ ports: [b, a] })));
    expect(networkHolderName(desired({ ports: [a] }))).toMatch(/^reseat-web-net-[0-9a-f]{10}$/);
    expect(networkHolderName(desired({ ports: [a] }))).not.toBe(networkHolderName(desired({ ports: [{ ...a, host: 18081 }] })));
    expect(networkHolderName(desired({ peId: "api" }))).not.toBe(networkHolderName(desired()));
  });

  it("a standby cannot start beside an executable that publishes its ports itself, or in another port set's holder", () => {
    const want = desired();
    expect(standbyNetworkBlocker(observed({ networkHolder: networkHolderName(want) }), want)).toBeUndefined();
    expect(standbyNetworkBlocker(observed(), want)).toMatch(/reseat-web-g1 publishes its ports itself/);
    expect(standbyNetworkBlocker(observed({ networkHolder: "reseat-web-net-0000000000" }), want)).toMatch(/other published ports/);
    // No holder wanted (staged, host network): nothing in the way.
    expect(standbyNetworkBlocker(observed(), desired({ handover: undefined }))).toBeUndefined();
    expect(standbyNetworkBlocker(observed(), desired({ network: "host" }))).toBeUndefined();
  });

  it("publishes the ports as the engine's create call takes them", () => {
    const { exposed, bindings } = publishedPorts(
      desired({
        ports: [
          { container: 8080, host: 18080, hostIp: "127.0.0.1", protocol: "tcp" },
          { container: 53, hostIp: "0.0.0.0", protocol: "udp" },
        ],
      }),
    );
    expect(exposed).toEqual({ "8080/tcp": {}, "53/udp": {} });
    expect(bindings).toEqual({ "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "18080" }], "53/udp": [{ HostIp: "0.0.0.0", HostPort: "" }] });
  });

  it("its program is a static ELF64 for the engine's CPU; another CPU is refused, naming what to use instead", () => {
    for (const [architecture, machine] of [
      ["x86_64", 62],
      ["aarch64", 183],
      ["arm64", 183],
    ] as const) {
      const elf = pauseElf(architecture);
      expect(elf.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
      expect(elf[4]).toBe(2); // 64-bit
      expect(elf.readUInt16LE(16)).toBe(2); // ET_EXEC
      expect(elf.readUInt16LE(18)).toBe(machine);
      expect(elf.readBigUInt64LE(24)).toBe(0x400000n + 120n); // entry: right after the headers
      expect(elf.readBigUInt64LE(96)).toBe(BigInt(elf.length)); // one segment: the whole file
    }
    expect(() => pauseElf("s390x")).toThrow(/architecture "s390x" has no network holder program.*handover "staged"/);
  });
});
