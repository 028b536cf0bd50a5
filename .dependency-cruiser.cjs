// The layer rules of docs/design.md, checked on every `npm run lint` / `bash scripts/test.sh`
// (scripts/lint.sh). Each rule is named for what it protects; docs/design.md has the table of them.
// Paths are relative to the repository root; the contract is reached either as its source
// (packages/state/src/contract) or through the package's exports (@reseat/state/contract → dist).

const CONTRACT = "^packages/state/(src|dist)/contract/";
/** The engine folders: only the composition root (src/backend/open.ts) chooses one. */
const ENGINE_FOLDERS = "^src/backend/(docker|kubernetes|fake)/";
/** Engine client libraries: reached only through an engine folder. */
const ENGINE_CLIENTS = "(^|/)node_modules/(dockerode|docker-modem|@kubernetes/client-node)/";
/** The workload's state library, apart from the contract it shares with the provider side. */
const WORKLOAD_CODE = "^(packages/state/(src|dist)/(?!contract/)|src/state/)";
const CORE = ["core"];

/**
 * The layers of docs/design.md from the bottom up (schema and plan have rules of their own, above):
 * each may import what is below it, never what is above it.
 */
const LAYERS = [
  ["util", "^src/util/"],
  ["backend", "^src/backend/"],
  ["lease", "^src/lease/"],
  ["routine", "^src/replacement/"],
  ["provider-and-controller", "^src/(provider|controller)/"],
  ["cli", "^src/(cli|automation)/"],
  ["components", "^components/"],
  // The provider plugin serves the runtime and constructs the components for other languages.
  ["plugin", "^src/plugin/"],
];
const ABOVE_ALL = "^stacks/";

function noArrowUp() {
  return LAYERS.map(([name, path], index) => ({
    name: `${name}-imports-nothing-above`,
    comment: "An arrow running back up: importing a lower layer would load the layers above it (and make a cycle likely).",
    severity: "error",
    from: { path },
    to: { path: [...LAYERS.slice(index + 1).map(([, above]) => above), ABOVE_ALL] },
  }));
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "contract-is-a-leaf",
      comment:
        "The workload contract (record formats, RESEAT_* environment) is shared by the state library and the provider side: it imports nothing, so both can depend on it without dragging anything along.",
      severity: "error",
      from: { path: CONTRACT },
      to: { pathNot: CONTRACT },
    },
    {
      name: "schema-imports-only-the-contract",
      comment: "src/schema (zod schema, errors) is the bottom of the provider side: it may use the contract, zod and Node's built-ins, nothing above it.",
      severity: "error",
      from: { path: "^src/schema/" },
      to: { pathNot: ["^src/schema/", CONTRACT, "(^|/)node_modules/zod/"], dependencyTypesNot: CORE },
    },
    {
      name: "plan-imports-only-schema-and-contract",
      comment:
        "src/plan is pure (old vs new spec -> what to do): importing it must not load an engine, the lease, the replacement routine or the state library.",
      severity: "error",
      from: { path: "^src/plan/" },
      to: { pathNot: ["^src/plan/", "^src/schema/", CONTRACT], dependencyTypesNot: CORE },
    },
    {
      name: "routine-imports-no-workload-code",
      comment:
        "The replacement routine talks to the workload only through the contract (records, environment) and the Backend seam, never through the workload's own state library.",
      severity: "error",
      from: { path: "^src/replacement/" },
      to: { path: WORKLOAD_CODE },
    },
    {
      name: "engine-chosen-only-in-open-ts",
      comment:
        "The replacement routine, provider, controller, lease, CLI and automation speak to the Backend seam (src/backend/backend.ts); which engine serves is chosen in one place, src/backend/open.ts, which loads each engine only when asked for it.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/backend/", "^src/index\\.ts$"] },
      to: { path: [ENGINE_FOLDERS, ENGINE_CLIENTS] },
    },
    {
      name: "kubernetes-client-loads-on-demand",
      comment:
        "The Kubernetes client is the heaviest module reseat loads: no static import reaches it from the provider side or the components, so a Docker-only provider call never loads it; src/backend/open.ts requires the Kubernetes backend when a PE asks for Kubernetes.",
      severity: "error",
      from: { path: "^(src|components)/", pathNot: "^src/backend/kubernetes/" },
      to: {
        path: ["^src/backend/kubernetes/", "(^|/)node_modules/@kubernetes/client-node/"],
        dependencyTypesNot: ["require", "dynamic-import", "type-only", "type-import"],
      },
    },
    {
      name: "seam-is-engine-neutral",
      comment:
        "The Backend seam and its engine-neutral helpers (src/backend/*.ts) are what every engine implements and every caller uses: they name no engine.",
      severity: "error",
      from: { path: "^src/backend/[^/]+$", pathNot: "^src/backend/open\\.ts$" },
      to: { path: [ENGINE_FOLDERS, ENGINE_CLIENTS] },
    },
    {
      name: "engines-are-independent",
      comment:
        "Docker, Kubernetes and the fake each implement the seam on their own: a behaviour shared by engines belongs in the seam or the contract, not in another engine's folder.",
      severity: "error",
      from: { path: "^src/backend/(docker|kubernetes|fake)/" },
      to: { path: ENGINE_FOLDERS, pathNot: "^src/backend/$1/" },
    },
    ...noArrowUp(),
    {
      name: "components-import-no-engine",
      comment: "Pulumi components describe PEs; engines are reached by the provider at run time through src/backend/open.ts.",
      severity: "error",
      from: { path: "^components/" },
      to: { path: [ENGINE_FOLDERS, ENGINE_CLIENTS] },
    },
    {
      name: "state-library-stands-alone",
      comment:
        "packages/state runs inside the workload's container with zero runtime dependencies (pg an optional peer): no Pulumi, no engine client, nothing from the provider side (src/).",
      severity: "error",
      from: { path: "^packages/state/src/" },
      to: { pathNot: ["^packages/state/(src|dist)/", "(^|/)node_modules/(@types/)?pg/"], dependencyTypesNot: CORE },
    },
    {
      name: "no-circular",
      comment: "A cycle makes the order of loading decide behaviour and hides which layer is below which.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-tests",
      comment: "Shipped code never loads test code.",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { path: "^test/" },
    },
    {
      name: "not-to-unresolvable",
      comment: "An import that resolves to nothing is a typo or a missing dependency; the rules above could not see where it points.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // @reseat/state resolves (through the workspace link and its exports) to packages/state/dist:
    // recorded, matched by the rules above, not cruised again (its source is, as packages/state/src).
    doNotFollow: { path: ["(^|/)node_modules/", "(^|/)dist/"] },
    // Type-only imports count: a type import still ties the layers together (and loads in tests).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    moduleSystems: ["cjs", "es6"],
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".cjs", ".mjs", ".json", ".d.ts"],
      mainFields: ["module", "main", "types", "typings"],
    },
    skipAnalysisNotInRules: true,
  },
};
