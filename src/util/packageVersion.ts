import * as fs from "node:fs";
import * as path from "node:path";

/** The version of the reseat package this code belongs to (the CLI's --version, the plugin's version). */
export function packageVersion(): string {
  // dist/src/<folder>/ when compiled, src/<folder>/ when run from source (tests): the nearest reseat package.json up.
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const manifest = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version: string };
      if (manifest.name === "reseat") return manifest.version;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json of reseat above ${__dirname}`);
  }
}
