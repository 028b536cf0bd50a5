// Fault injection for crash-safety tests: with RESEAT_FAULT_POINT=<name> and RESEAT_FAULT_MARKER=<file>,
// the process that reaches that point writes the marker and hangs, so a test can kill the whole
// `pulumi up` process group exactly there. Inert unless both variables are set.
import { RESEAT_TOOL_ENV } from "@reseat/state/contract";
import * as fs from "node:fs";

export type FaultPointName = "after-prepare" | "after-parked" | "after-stop" | "after-start" | "after-ready";

export async function faultPoint(name: FaultPointName): Promise<void> {
  const marker = process.env[RESEAT_TOOL_ENV.faultMarker];
  if (process.env[RESEAT_TOOL_ENV.faultPoint] !== name || !marker) return;
  fs.writeFileSync(marker, `${name} ${process.pid}\n`);
  await new Promise<never>(() => undefined); // wait to be killed
}
