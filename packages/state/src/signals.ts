import { errorMessage } from "./fsUtil";

export interface ShutdownOptions {
  /** Give up on the final commit after this long (keep it under the controller's grace period). */
  timeoutMs: number;
  signals?: NodeJS.Signals[];
  /** Injectable for tests; defaults to process.exit. */
  exit?: (code: number) => void;
}

/**
 * On SIGTERM/SIGINT run `shutdown` (the final commit), bounded by a timeout, then exit:
 * 0 when it finished, 1 when it failed or timed out. Repeated signals during shutdown are ignored
 * (the controller's SIGKILL ends things if the grace period runs out). Returns an uninstaller.
 */
export function installShutdownHandlers(shutdown: () => Promise<void>, options: ShutdownOptions): () => void {
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let started = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (started) return;
    started = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`final commit did not finish within ${options.timeoutMs}ms`)), options.timeoutMs);
    });
    Promise.race([shutdown(), timeout]).then(
      () => {
        clearTimeout(timer);
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        process.stderr.write(`reseat state: shutdown on ${signal} failed: ${errorMessage(error)}\n`);
        exit(1);
      },
    );
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
