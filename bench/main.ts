// npm run bench -- <metric>   (writes bench/results/<metric>.json)
import { benchBadReleaseDowntime } from "./badReleaseDowntime";
import { benchCommitThroughput } from "./commitThroughput";
import { benchFirstRun } from "./firstRun";
import { benchHandoverRequests } from "./handoverRequests";
import { benchPlainUp } from "./plainUp";
import { benchK8sReplacementGap } from "./k8sReplacementGap";
import { benchRecoveryTime } from "./recoveryTime";
import { benchReplacementGap, benchRevertTime } from "./replacementGap";
import { benchResumeTime } from "./resumeTime";
import { benchRolling } from "./rolling";
import { benchScale } from "./scale";
import { benchK8sScale } from "./scaleK8s";
import { benchStandbyHandoff } from "./standbyHandoff";

const metrics: Record<string, () => Promise<string>> = {
  replacement_gap: benchReplacementGap,
  revert_time: benchRevertTime,
  commit_throughput: benchCommitThroughput,
  rolling: benchRolling,
  recovery_time: benchRecoveryTime,
  plain_up_overhead: benchPlainUp,
  resume_time: benchResumeTime,
  k8s_replacement_gap: benchK8sReplacementGap,
  scale: benchScale,
  k8s_scale: benchK8sScale,
  first_run: benchFirstRun,
  standby_handoff: benchStandbyHandoff,
  handover_requests: benchHandoverRequests,
  bad_release_downtime: benchBadReleaseDowntime,
};

// `scale` runs the peers too (minutes at N = 100; `k8s_scale` is its Kubernetes section alone); `first_run` builds the whole toolchain from nothing
// (minutes, both cores); `standby_handoff` measures the state library alone (no engine): only when asked for by name.
const ON_REQUEST_ONLY = new Set(["scale", "k8s_scale", "first_run", "standby_handoff"]);

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const names = requested.length ? requested : Object.keys(metrics).filter((name) => !ON_REQUEST_ONLY.has(name));
  for (const name of names) {
    const run = metrics[name];
    if (!run) {
      console.error(`unknown metric "${name}"; known: ${Object.keys(metrics).join(", ")}`);
      process.exit(2);
    }
    const file = await run();
    console.log(`${name}: wrote ${file}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
