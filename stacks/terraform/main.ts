// The Terraform stack: PE specs from a stack config file (stacks/terraform/stack.<stack>.json, the
// same specs as stacks/Pulumi.<stack>.yaml's `reseat:processingElements`) synthesized by cdktf into
// <outdir>/stacks/<stack>/cdk.tf.json, for OpenTofu (scripts/tf.sh) or Terraform.
//
//   node dist/stacks/terraform/main.js [--stack NAME] [--config FILE] [--out DIR] [--state FILE]
//
// Also the `app` of stacks/terraform/cdktf.json, so `cdktf synth` works where the cdktf CLI is installed.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { App } from "cdktf";
import { ReseatTerraformStack, parseStackConfig } from "../../components/terraform";

export interface SynthOptions {
  /** Stack name; default "local". */
  stack?: string;
  /** A JSON file {processingElements: [...]}; default stacks/terraform/stack.<stack>.json. */
  configFile?: string;
  /** Or the config itself. */
  config?: unknown;
  /** Default: $CDKTF_OUTDIR (set by the cdktf CLI), else <checkout>/cdktf.out. */
  outdir?: string;
  /** Local state file; default stacks/terraform/terraform.<stack>.tfstate (cdktf's convention). */
  statePath?: string;
}

export interface SynthResult {
  stack: string;
  /** The folder to run tofu in. */
  stackDir: string;
  /** The synthesized configuration. */
  file: string;
  statePath: string;
}

/** The checkout: the nearest folder above this file with a package.json (works from src and dist). */
export const ROOT = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
})();

export function synthesize(options: SynthOptions = {}): SynthResult {
  const stack = options.stack ?? "local";
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(stack)) throw new Error(`reseat: invalid stack name "${stack}": letters, digits, '_' and '-'`);
  const configFile = path.resolve(options.configFile ?? path.join(ROOT, "stacks", "terraform", `stack.${stack}.json`));
  let config = options.config;
  if (config === undefined) {
    let text: string;
    try {
      text = fs.readFileSync(configFile, "utf8");
    } catch (error) {
      throw new Error(`reseat: cannot read the stack config ${configFile}: ${(error as Error).message}`);
    }
    try {
      config = JSON.parse(text) as unknown;
    } catch (error) {
      throw new Error(`reseat: the stack config ${configFile} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const outdir = path.resolve(options.outdir ?? process.env.CDKTF_OUTDIR ?? path.join(ROOT, "cdktf.out"));
  const statePath = path.resolve(options.statePath ?? path.join(ROOT, "stacks", "terraform", `terraform.${stack}.tfstate`));

  const app = new App({ outdir, stackTraces: false });
  new ReseatTerraformStack(app, stack, { processingElements: parseStackConfig(config), statePath });
  app.synth();
  const stackDir = path.join(outdir, "stacks", stack);
  return { stack, stackDir, file: path.join(stackDir, "cdk.tf.json"), statePath };
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      config: { type: "string" },
      out: { type: "string" },
      state: { type: "string" },
      json: { type: "boolean" },
    },
    strict: true,
  });
  try {
    const result = synthesize({ stack: values.stack, configFile: values.config, outdir: values.out, statePath: values.state });
    if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
    else process.stderr.write(`synthesized stack ${result.stack}: ${result.file}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
