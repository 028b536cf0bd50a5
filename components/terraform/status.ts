// Commit status (generation, last commit, lag, resumed-from) in Terraform outputs, without a provider.
//
// The issue asked for hashicorp/external's data source running `reseat status --json`. That provider
// cannot be had here (the Go module proxy answers 403 for every version of
// github.com/hashicorp/terraform-provider-external), so the status comes in through a file instead:
// the workflow (scripts/tf.sh) writes `reseat status --json` to a file before `tofu plan/apply` (and
// again after apply, followed by `tofu apply -refresh-only`), and the stack reads it with the
// built-in functions fileexists()/file()/jsondecode(). Functions are evaluated when the
// configuration is, so the outputs show the file as it was when plan/apply started: the figures are
// exactly as fresh as the file, and `statusFile` in each PE's output says where they came from.
//
// Everything cdktf-specific of the Terraform flavour lives in components/terraform and stacks/terraform.
import { Construct } from "constructs";
import { TerraformLocal, TerraformVariable } from "cdktf";

/** The file name the workflow writes in the stack's folder (cdktf.out/stacks/<stack>/). */
export const STATUS_FILE_NAME = "reseat-status.json";
export const STATUS_VARIABLE = "reseat_status_file";

/** The fields of one `reseat status --json` row that go into a PE's outputs. */
export const STATUS_FIELDS = [
  "generation",
  "state",
  "executable",
  "lastCommit",
  "commitLagMs",
  "resumedFrom",
  "resumedSeq",
  "lastCommitError",
  "restarts",
] as const;

/**
 * One per stack: the variable naming the status file (default: reseat-status.json next to the
 * synthesized stack) and a local holding its rows ([] when the file is absent).
 */
export class ReseatStatusFile extends Construct {
  readonly variable: TerraformVariable;
  readonly path: TerraformLocal;
  readonly rows: TerraformLocal;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.variable = new TerraformVariable(this, "file", {
      type: "string",
      default: "",
      description: `A file holding the output of \`reseat status --json\` (default: ${STATUS_FILE_NAME} in the stack's folder). scripts/tf.sh writes it before plan and apply.`,
    });
    this.variable.overrideLogicalId(STATUS_VARIABLE);
    this.path = new TerraformLocal(this, "path", `\${var.${STATUS_VARIABLE} != "" ? var.${STATUS_VARIABLE} : "\${path.module}/${STATUS_FILE_NAME}"}`);
    this.path.overrideLogicalId("reseat_status_path");
    // jsondecode of "[]" rather than a conditional between a tuple and []: both branches of a
    // conditional must have one type, and tuples of different lengths do not.
    this.rows = new TerraformLocal(this, "rows", `\${jsondecode(fileexists(local.reseat_status_path) ? file(local.reseat_status_path) : "[]")}`);
    this.rows.overrideLogicalId("reseat_status_rows");
  }

  /** An expression for the row of one PE, or null when the file has none. */
  rowExpression(peId: string): string {
    return `one([for row in local.reseat_status_rows : row if try(row.peId, "") == ${JSON.stringify(peId)}])`;
  }
}
