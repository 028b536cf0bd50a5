// The member workload of the scale bench, one for reseat and every peer: the tiny Go workload
// (workload/tiny: a few MiB per member, so that 1000 fit a small machine), built on demand, or the demo
// workload (~40 MiB RSS, fine up to 100 members). RESEAT_BENCH_SCALE_WORKLOAD=tiny|demo; default: tiny
// if it builds, else demo.
import { execFile } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { PROJECT_ROOT } from "../src/automation/stack";

const run = promisify(execFile);

export interface ScaleWorkload {
  kind: "tiny" | "demo";
  images: readonly [string, string];
  /** The memory limit every system gives a member (MiB). */
  memoryMiB: number;
  /** How a Docker healthcheck probes a member from inside its container (exec form). */
  healthcheck: string[];
  /** Why the default (tiny) is not used, when it is not. */
  note?: string;
}

const TINY_IMAGES = ["reseat-tiny-workload:v1", "reseat-tiny-workload:v2"] as const;
const DEMO_IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const TINY_SOURCE = path.join(PROJECT_ROOT, "workload", "tiny");

export async function scaleWorkload(log: (text: string) => void): Promise<ScaleWorkload> {
  const wanted = process.env.RESEAT_BENCH_SCALE_WORKLOAD ?? "";
  if (wanted !== "" && wanted !== "tiny" && wanted !== "demo") throw new Error(`RESEAT_BENCH_SCALE_WORKLOAD: expected "tiny" or "demo", got "${wanted}"`);
  const demo: ScaleWorkload = {
    kind: "demo",
    images: DEMO_IMAGES,
    memoryMiB: 48,
    healthcheck: [
      "CMD",
      "node",
      "-e",
      "require('http').get('http://127.0.0.1:'+process.env.PORT+'/healthz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))",
    ],
  };
  if (wanted === "demo") return demo;
  try {
    await buildTinyImages(log);
    return { kind: "tiny", images: TINY_IMAGES, memoryMiB: 32, healthcheck: ["CMD", "/server", "probe"] };
  } catch (error) {
    if (wanted === "tiny") throw error;
    const note = `the tiny workload did not build (${(error as Error).message.split("\n")[0]}): every system runs the demo workload`;
    log(note);
    return { ...demo, note };
  }
}

/** `CGO_ENABLED=0 go build` of workload/tiny, then reseat-tiny-workload:v1/:v2 FROM scratch, when the source changed. */
async function buildTinyImages(log: (text: string) => void): Promise<void> {
  const hash = sourceHash(TINY_SOURCE);
  const current = await Promise.all(
    TINY_IMAGES.map((tag) =>
      run("docker", ["image", "inspect", "-f", '{{ index .Config.Labels "io.reseat.source-hash" }}', tag]).then(
        (r) => r.stdout.trim(),
        () => "",
      ),
    ),
  );
  if (current.every((have) => have === hash)) return;
  const context = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tiny-"));
  try {
    log("building the tiny workload (go build, docker build)");
    await run("go", ["build", "-trimpath", "-ldflags=-s -w", "-o", path.join(context, "server"), "."], {
      cwd: TINY_SOURCE,
      env: { ...process.env, CGO_ENABLED: "0" },
    });
    fs.copyFileSync(path.join(TINY_SOURCE, "Dockerfile"), path.join(context, "Dockerfile"));
    for (const [i, tag] of TINY_IMAGES.entries()) {
      await run("docker", ["build", "-q", "-t", tag, "--label", `io.reseat.source-hash=${hash}`, "--build-arg", `WORKLOAD_VERSION=v${i + 1}`, context], {
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
      });
    }
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}

function sourceHash(dir: string): string {
  const hash = crypto.createHash("sha256");
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isFile()) hash.update(name).update(fs.readFileSync(file));
  }
  return hash.digest("hex").slice(0, 16);
}
