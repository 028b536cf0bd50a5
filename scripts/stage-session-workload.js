// Stages the session workload's build context: server.js + Dockerfile, the compiled state library
// (dist/src/state -> state/), and the runtime dependency closure of `pg` (node_modules/).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const out = process.argv[2];
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
for (const file of ["server.js", "Dockerfile"]) fs.copyFileSync(path.join(root, "workload", "session", file), path.join(out, file));
fs.cpSync(path.join(root, "dist", "src", "state"), path.join(out, "state"), {
  recursive: true,
  filter: (src) => !src.endsWith(".map") && !src.endsWith(".d.ts") && !src.endsWith(".md"),
});

const seen = new Set();
function copyPackage(name, from) {
  if (seen.has(name)) return;
  let manifest;
  try {
    manifest = require.resolve(`${name}/package.json`, { paths: [from] });
  } catch {
    return; // optional peer not installed (e.g. pg-native): pg works without it
  }
  seen.add(name);
  const dir = path.dirname(manifest);
  fs.cpSync(dir, path.join(out, "node_modules", name), { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(manifest, "utf8"));
  for (const dep of Object.keys(pkg.dependencies || {})) copyPackage(dep, dir);
}
copyPackage("pg", root);
console.log(`staged ${out}: state library + ${seen.size} packages`);
