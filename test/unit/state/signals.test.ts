import { describe, expect, it } from "vitest";
import { openState, StateClosedError } from "../../../packages/state/src/index";
import { installShutdownHandlers } from "../../../packages/state/src/signals";
import { sleep, tempDir, waitFor } from "./helpers";

// process.emit() runs the listeners without sending a real signal to the test runner.
describe("shutdown on signals", () => {
  it("exits 0 after the shutdown work finished, once, however many signals arrive", async () => {
    const exits: number[] = [];
    let runs = 0;
    const uninstall = installShutdownHandlers(
      async () => {
        runs++;
        await sleep(20);
      },
      { timeoutMs: 1_000, signals: ["SIGUSR2"], exit: (code) => exits.push(code) },
    );
    process.emit("SIGUSR2", "SIGUSR2");
    process.emit("SIGUSR2", "SIGUSR2");
    await waitFor(() => exits.length > 0);
    uninstall();
    expect([runs, exits]).toEqual([1, [0]]);
  });

  it("exits 1 when the shutdown work hangs past the timeout or fails", async () => {
    const exits: number[] = [];
    const stderrWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = () => true; // keep the expected failure message out of the test output
    try {
      const uninstallHang = installShutdownHandlers(() => new Promise(() => undefined), {
        timeoutMs: 30,
        signals: ["SIGUSR2"],
        exit: (code) => exits.push(code),
      });
      process.emit("SIGUSR2", "SIGUSR2");
      await waitFor(() => exits.length === 1);
      uninstallHang();
      const uninstallFail = installShutdownHandlers(() => Promise.reject(new Error("store down")), {
        timeoutMs: 1_000,
        signals: ["SIGUSR2"],
        exit: (code) => exits.push(code),
      });
      process.emit("SIGUSR2", "SIGUSR2");
      await waitFor(() => exits.length === 2);
      uninstallFail();
    } finally {
      process.stderr.write = stderrWrite;
    }
    expect(exits).toEqual([1, 1]);
  });

  it("handleSignals installs SIGTERM/SIGINT listeners and close() removes them", async () => {
    const before = [process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")];
    const state = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 1, store: null, handleSignals: true, env: {} });
    expect([process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")]).toEqual(before.map((n) => n + 1));
    await state.close();
    expect([process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")]).toEqual(before);
  });

  it("rejects use after close, but close itself is idempotent", async () => {
    const stateDir = tempDir();
    const state = await openState({ stateDir, peId: "pe-1", generation: 1, store: null, env: {} });
    const pendingPut = state.put("a", 1); // queued before close: still acknowledged
    await Promise.all([state.close(), state.close()]);
    expect(await pendingPut).toBe(1);
    await expect(state.put("b", 2)).rejects.toBeInstanceOf(StateClosedError);
    await expect(state.commitNow()).rejects.toBeInstanceOf(StateClosedError);
    expect(() => state.get("a")).toThrow(StateClosedError); // reads go to the database, which is closed
    const again = await openState({ stateDir, peId: "pe-1", generation: 2, store: null, env: {} });
    expect(again.get("a")).toBe(1);
    await again.close();
  });
});
