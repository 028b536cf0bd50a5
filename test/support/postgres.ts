// The private PostgreSQL the tests use (scripts/postgres.sh): its connection settings.
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { ROOT } from "./harness";

/** RESEAT_PG_HOST, RESEAT_PG_PORT, RESEAT_PG_DATABASE, RESEAT_PG_USER, RESEAT_PG_PASSWORD, as `postgres.sh env` says. */
export function postgresSettings(): Record<string, string> {
  return Object.fromEntries(
    execFileSync("bash", [path.join(ROOT, "scripts", "postgres.sh"), "env"])
      .toString()
      .replace(/^export /, "")
      .trim()
      .split(/\s+/)
      .map((pair) => pair.split("=") as [string, string]),
  );
}
