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
fs.cpSync(path.join(root, "packages", "state", "dist"), path.join(out, "state"), {
  recursive: true,
  filter: (src) => !src.endsWith(".map") && !src.endsWith(".d.ts") && !src.endsWith(".md"),
});

const seen = new Set();
function copyPackage(name, from) {
  if (seen.has(name)) return;
  // Found the way Node looks for it (not via require.resolve: "exports" may hide package.json).
  const candidates = [];
  for (let dir = from; ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, "node_modules", name, "package.json"));
    if (path.dirname(dir) === dir) break;
  }
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) return; // optional peer not installed (e.g. pg-native): pg works without it
  seen.add(name);
  const dir = path.dirname(found);
  fs.cpSync(dir, path.join(out, "node_modules", name), { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(found, "utf8"));
  for (const dep of Object.keys(pkg.dependencies || {})) copyPackage(dep, dir);
}
copyPackage("pg", root);
console.log(`staged ${out}: state library + ${seen.size} packages`);
