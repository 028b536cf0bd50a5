// The workload contract's records: each encodes and decodes to the same value, carries its version,
// reads the 0.4.0 form (no version), and a damaged or newer record is a RecordCorruptError naming the
// record — never a SyntaxError from JSON.parse.
import { describe, expect, it } from "vitest";
import {
  CONTROLLER_RECORD,
  CONTROL_RECORD,
  FENCE_RECORD,
  META_RECORD,
  RECORD_VERSION,
  REVERT_RECORD,
  RESEAT_ENV,
  RESERVED_ENV_NAMES,
  RecordCorruptError,
  STATUS_RECORD,
  type RecordCodec,
  type WorkloadStatus,
  controlOf,
  storeEnv,
  workloadEnvironment,
} from "@reseat/state/contract";

const status: WorkloadStatus = {
  peId: "pe-a",
  generation: 3,
  phase: "serving",
  resumedFrom: "local",
  resumedSeq: 10,
  seq: 12,
  commitIntervalMs: 1000,
  lastCommit: { seq: 11, at: "2026-12-07T10:00:00.000Z", bytes: 4096, sha256: "ab", generation: 3 },
  lastCommitError: null,
  lastCommitAttemptAt: "2026-12-07T10:00:00.000Z",
  restoreFailed: null,
  updatedAt: "2026-12-07T10:00:01.000Z",
};

const samples: [RecordCodec<never>, unknown][] = [
  [META_RECORD as RecordCodec<never>, { peId: "pe-a", generation: 4, volume: "reseat-pe-a-state", updatedAt: "2026-12-07T10:00:00.000Z" }],
  [CONTROL_RECORD as RecordCodec<never>, { commitIntervalMs: 2500, failureBackoff: { initialMs: 1000, maxMs: 60000, resetAfterMs: 120000 } }],
  [CONTROL_RECORD as RecordCodec<never>, { commitIntervalMs: 2500 }],
  [
    REVERT_RECORD as RecordCodec<never>,
    {
      reverted: true,
      at: "t",
      failedExecutable: "reseat-pe-a-g2",
      failedSpecHash: "h",
      servingGeneration: 3,
      servingExecutable: "reseat-pe-a-g3",
      readyAt: "t2",
      error: "boom",
    },
  ],
  [REVERT_RECORD as RecordCodec<never>, { reverted: false }],
  [
    CONTROLLER_RECORD as RecordCodec<never>,
    { restarts: 2, consecutiveFailures: 1, lastFailureAt: "t", lastFailure: "exited", lastReseatAt: "t", state: "backoff" },
  ],
  [STATUS_RECORD as RecordCodec<never>, status],
  [FENCE_RECORD as RecordCodec<never>, { generation: 7 }],
];

describe("the contract's records", () => {
  it.each(samples.map(([codec, value]) => [codec.name, codec, value] as const))("%s: round-trips and carries its version", (_name, codec, value) => {
    const text = codec.encode(value as never);
    expect(JSON.parse(text)).toMatchObject({ version: RECORD_VERSION });
    expect(codec.decode(text)).toEqual(value);
    expect(codec.version).toBe(RECORD_VERSION);
  });

  it("reads the 0.4.0 forms, written without a version", () => {
    expect(META_RECORD.decode('{"peId":"pe-a","generation":2,"volume":"v","updatedAt":"t"}')).toEqual({
      peId: "pe-a",
      generation: 2,
      volume: "v",
      updatedAt: "t",
    });
    // The state library's own meta on Kubernetes (no volume name).
    expect(META_RECORD.decode('{"peId":"pe-a","generation":2,"updatedAt":"t"}')).toMatchObject({ generation: 2, volume: "" });
    expect(CONTROL_RECORD.decode('{"commitIntervalMs":2500}')).toEqual({ commitIntervalMs: 2500 });
    expect(REVERT_RECORD.decode('{"reverted":false}')).toEqual({ reverted: false });
    expect(
      CONTROLLER_RECORD.decode('{"restarts":1,"consecutiveFailures":1,"lastFailureAt":"t","lastFailure":"x","lastReseatAt":"t","state":"ok"}'),
    ).toMatchObject({ restarts: 1, state: "ok" });
    expect(FENCE_RECORD.decode('{"generation":7}')).toEqual({ generation: 7 });
    const { lastCommitAttemptAt: _a, restoreFailed: _r, phase: _p, ...old } = status;
    // A status from before the hand-over (no phase) was written by the serving writer.
    expect(STATUS_RECORD.decode(JSON.stringify(old))).toMatchObject({
      generation: 3,
      seq: 12,
      restoreFailed: null,
      lastCommitAttemptAt: null,
      phase: "serving",
    });
    expect(STATUS_RECORD.decode(JSON.stringify({ ...status, phase: "parked" })).phase).toBe("parked");
  });

  it.each([
    ["not JSON", META_RECORD, "{gen", /the meta record is unreadable: not JSON/],
    ["not an object", CONTROL_RECORD, "[1]", /the control record is unreadable: not a JSON object/],
    ["a field of the wrong type", META_RECORD, '{"generation":"3"}', /"generation" is "3", not an integer/],
    ["a missing field", REVERT_RECORD, "{}", /"reverted" is undefined, not a boolean/],
    ["an unknown state", CONTROLLER_RECORD, '{"restarts":1,"state":"dancing"}', /"state" is "dancing"/],
    ["a newer version", FENCE_RECORD, '{"version":99,"generation":1}', /version 99 was written by a newer reseat/],
    ["a bad version", CONTROL_RECORD, '{"version":"one","commitIntervalMs":1}', /"version" is "one"/],
    ["a zero interval", CONTROL_RECORD, '{"commitIntervalMs":0}', /"commitIntervalMs" is 0, not an integer ≥ 1/],
    ["an unknown phase", STATUS_RECORD, '{"generation":1,"seq":0,"phase":"napping"}', /"phase" is "napping", not one of parked, serving/],
  ] as const)("%s is a RecordCorruptError naming the record", (_case, codec, text, message) => {
    let thrown: unknown;
    try {
      (codec as RecordCodec<unknown>).decode(text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RecordCorruptError);
    expect((thrown as RecordCorruptError).record).toBe(codec.name);
    expect((thrown as Error).message).toMatch(message);
  });

  it("the control record of a spec is its commit interval and failure backoff", () => {
    expect(controlOf({ commitIntervalMs: 500 })).toEqual({ commitIntervalMs: 500 });
    expect(controlOf({ commitIntervalMs: 500, failureBackoff: { initialMs: 1, maxMs: 2, resetAfterMs: 3 } })).toEqual({
      commitIntervalMs: 500,
      failureBackoff: { initialMs: 1, maxMs: 2, resetAfterMs: 3 },
    });
  });
});

describe("the contract's environment", () => {
  it("builds the RESEAT_* env over the spec's own (no password, a file instead)", () => {
    const store = storeEnv({ kind: "postgres", host: "db", port: 5432, database: "d", user: "u", table: "t", keep: 3, password: "hunter2" }, "/state");
    const env = workloadEnvironment({
      env: { PORT: "8080" },
      peId: "pe-a",
      stateDir: "/state",
      commitIntervalMs: 1000,
      generation: 4,
      store,
      controlFile: "/etc/c",
      claimGeneration: true,
    });
    expect(env).toEqual({
      PORT: "8080",
      RESEAT_PE_ID: "pe-a",
      RESEAT_STATE_DIR: "/state",
      RESEAT_COMMIT_INTERVAL_MS: "1000",
      RESEAT_GENERATION: "4",
      RESEAT_CONTROL_FILE: "/etc/c",
      RESEAT_CLAIM_GENERATION: "1",
      RESEAT_STORE: store,
    });
    expect(store).not.toContain("hunter2");
    expect(JSON.parse(store!)).toMatchObject({ passwordFile: "/state/.reseat/secrets/store-password" });
  });

  it("reserves every name it sets", () => {
    expect([...RESERVED_ENV_NAMES].sort()).toEqual(Object.values(RESEAT_ENV).sort());
    const env = workloadEnvironment({
      env: {},
      peId: "p",
      stateDir: "/s",
      commitIntervalMs: 1,
      generation: 1,
      store: "{}",
      controlFile: "/c",
      claimGeneration: true,
      standby: true,
    });
    expect(Object.keys(env).sort()).toEqual([...RESERVED_ENV_NAMES].sort());
  });
});
