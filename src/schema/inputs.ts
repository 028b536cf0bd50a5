// Spec fields as Pulumi Inputs. In a program, any field of a PE spec — and any value inside one: an env
// value, a list item — may be a Pulumi Output or a Promise, whose value the program gets later (during a
// preview maybe never). This module is the pure part: it finds such values, validates everything the
// program already holds (the same field-named errors as a plain spec), names the few fields that must
// be known because they decide which resources are declared, and turns resolved fields back into spec
// values. No Pulumi import (an Output is recognized by shape), so every flavour can share it.
import { z } from "zod";
import { ProcessingElementSpec, SpecError, engineProblems, parseProcessingElement, problemOf, processingElementSchema } from "./processingElement";

export type Path = string[];
export type Problem = { field: string; expected: string };
/** A top-level field of the PE spec. */
export type SpecField = keyof ProcessingElementSpec & string;

/**
 * The string Pulumi gives a dynamic provider for a value unknown during a preview (`rpc.unknownValue`
 * in @pulumi/pulumi): what `check` sees in place of an Output not resolved yet.
 */
export const UNKNOWN_DURING_PREVIEW = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** A value the program does not hold yet: a Pulumi Output (recognized by its brand) or a Promise. */
export function isDeferred(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as { __pulumiOutput?: unknown; then?: unknown };
  return candidate.__pulumiOutput === true || typeof candidate.then === "function";
}

function isPlainContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return true;
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Secrets the schema has always taken as Outputs (a password, a TLS or ssh key): validated as "a
 * non-empty string or a Pulumi secret Output" and kept secret by the component, so an Output there is
 * nothing to resolve later for validation, and leaves the spec as plain as before.
 */
export const SECRET_VALUE_FIELDS: readonly Path[] = [
  ["persistentStore", "password"],
  ["docker", "tls", "key"],
  ["docker", "ssh", "privateKey"],
  ["docker", "registryAuth", "password"],
];

function samePath(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

function isSecretValueField(path: readonly string[]): boolean {
  return SECRET_VALUE_FIELDS.some((field) => samePath(field, path));
}

/** Where the deferred values are (not looking into them), secret-value Outputs left out. */
export function deferredPaths(input: unknown, { secrets = false }: { secrets?: boolean } = {}): Path[] {
  const found: Path[] = [];
  const walk = (node: unknown, at: Path) => {
    if (isDeferred(node)) {
      if (secrets || !isSecretValueField(at)) found.push(at);
      return;
    }
    if (Array.isArray(node)) node.forEach((item, index) => walk(item, [...at, String(index)]));
    else if (isPlainContainer(node)) for (const [key, item] of Object.entries(node)) walk(item, [...at, key]);
  };
  walk(input, []);
  return found;
}

export function containsDeferred(input: unknown, options?: { secrets?: boolean }): boolean {
  return deferredPaths(input, options).length > 0;
}

/** A copy with the value at each path replaced (plain objects and arrays are copied on the way). */
function replaceAt(input: unknown, paths: Path[], by: (path: Path) => unknown): unknown {
  const walk = (node: unknown, at: Path): unknown => {
    if (paths.some((path) => samePath(path, at))) return by(at);
    if (!paths.some((path) => path.length > at.length && samePath(path.slice(0, at.length), at))) return node;
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...at, String(index)]));
    if (isPlainContainer(node)) return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...at, key])]));
    return node;
  };
  return walk(input, []);
}

/**
 * The spec's secret values replaced by a stand-in: for values computed from fields that hold secrets
 * but never read them (the engine target from `docker`), so that they are neither secret nor waiting.
 */
export function withoutSecretValues(input: unknown): unknown {
  const present = SECRET_VALUE_FIELDS.filter((path) => valueAt(input, path) !== undefined);
  return replaceAt(input, present, () => "(secret)");
}

function valueAt(input: unknown, path: readonly string[]): unknown {
  let node = input;
  for (const key of path) {
    if (!isPlainContainer(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * Fields whose value must be in the program's hands when the component is constructed: they decide
 * which resources are declared (and with which options), which cannot wait for an Output. A section
 * listed here must be a plain object; its other fields may still be Outputs.
 */
export const KNOWN_AT_CONSTRUCTION: readonly { path: Path; why: string }[] = [
  { path: ["kubernetes"], why: "it decides whether the PE runs on Docker or Kubernetes (its other fields may be Outputs)" },
  { path: ["kubernetes", "context"], why: "a Kubernetes provider is declared for the context" },
  { path: ["persistentStore"], why: "its kind decides the store's resources (its other fields may be Outputs)" },
  { path: ["persistentStore", "kind"], why: "it decides the store's resources (a claim of its own on Kubernetes) and its secret" },
  { path: ["persistentStore", "passwordSecret"], why: "it names a stack config key, read when the program runs" },
  { path: ["volume"], why: "volume.retainOnDestroy is an option of the state volume's resource (its other fields may be Outputs)" },
  { path: ["volume", "retainOnDestroy"], why: "it is an option (retainOnDelete) of the state volume's resource" },
  { path: ["docker"], why: "which secrets reach the engine is decided from its sections (its other fields may be Outputs)" },
  { path: ["docker", "tls"], why: "its presence decides which secrets reach the engine (its fields may be Outputs)" },
  { path: ["docker", "tls", "keySecret"], why: "it names a stack config key, read when the program runs" },
  { path: ["docker", "ssh"], why: "its presence decides which secrets reach the engine (its fields may be Outputs)" },
  { path: ["docker", "ssh", "privateKeySecret"], why: "it names a stack config key, read when the program runs" },
  { path: ["docker", "registryAuth"], why: "its presence decides which secrets reach the registry (its fields may be Outputs)" },
  { path: ["docker", "registryAuth", "passwordSecret"], why: "it names a stack config key, read when the program runs" },
];

function knownFieldProblems(deferred: Path[]): Problem[] {
  return deferred.flatMap((path) => {
    const known = KNOWN_AT_CONSTRUCTION.find((k) => samePath(k.path, path));
    return known ? [{ field: path.join("."), expected: `expected a value known when the program runs, not an Output or Promise: ${known.why}` }] : [];
  });
}

function under(field: Path, paths: Path[]): boolean {
  return paths.some((path) => path.length <= field.length && samePath(path, field.slice(0, path.length)));
}

/** What stands in for a deferred value while the rest is validated: fails every rule, so none of its issues is kept. */
const STANDS_IN = Object.freeze({ "(resolved later)": true });

/** The spec as far as the program holds it: the plain spec when nothing waits, and where something does. */
export interface KnownSpec {
  /** The validated spec, when no field waits for an Output (a secret-value Output does not wait). */
  spec?: ProcessingElementSpec;
  /** Paths of the values that resolve later. */
  deferred: Path[];
}

/**
 * Validates what the program holds now: the plain spec when nothing is deferred (parseProcessingElement,
 * exactly), else every known field, with the same messages; a deferred value is validated when it
 * resolves (see the components). Rules across fields (e.g. readiness: exactly one of httpGet or
 * logLine) wait until every field they involve is known. Throws SpecError naming every bad field,
 * including a deferred value where one must be known (KNOWN_AT_CONSTRUCTION).
 */
export function parseKnownProcessingElement(input: unknown, subject = "spec"): KnownSpec {
  if (isDeferred(input)) {
    throw new SpecError(subject, [
      { field: "(spec)", expected: "expected the spec as an object (each of its fields may be an Output), not one Output or Promise of the whole spec" },
    ]);
  }
  const deferred = deferredPaths(input);
  if (!deferred.length) return { spec: parseProcessingElement(input, subject), deferred };
  const standIn = replaceAt(input, deferred, () => STANDS_IN);
  const result = processingElementSchema.safeParse(standIn);
  const problems: Problem[] = [
    ...(result.success
      ? []
      : result.error.issues.filter((issue) => !under(issue.path.map(String), deferred)).map((issue) => problemOf(issue, standIn, "spec"))),
    ...engineProblems(standIn).filter((problem) => !under(problem.field.split("."), deferred)),
    ...knownFieldProblems(deferred),
  ];
  if (problems.length) throw new SpecError(subject, problems);
  return { deferred };
}

const shape = processingElementSchema.shape as unknown as Record<SpecField, z.ZodType>;

/**
 * Some fields of a spec, each parsed on its own (defaults filled, durations in ms), from values the
 * program holds: what a value computed from those fields sees. Throws when one of them is invalid
 * (the whole spec's validation reports it, naming the field).
 */
export function specFields<F extends SpecField>(fields: readonly F[], values: readonly unknown[]): Pick<ProcessingElementSpec, F> {
  return Object.fromEntries(
    fields.map((field, index) => {
      const parsed = shape[field].safeParse(values[index]);
      if (!parsed.success)
        throw new SpecError(
          "spec",
          parsed.error.issues.map((issue) => problemOf({ ...issue, path: [field, ...issue.path] } as never, { [field]: values[index] }, "spec")),
        );
      return [field, parsed.data];
    }),
  ) as unknown as Pick<ProcessingElementSpec, F>;
}

/** True when a value from a dynamic provider's inputs holds the preview's unknown anywhere. */
export function holdsUnknown(value: unknown): boolean {
  if (value === UNKNOWN_DURING_PREVIEW) return true;
  if (Array.isArray(value)) return value.some(holdsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(holdsUnknown);
  return false;
}

/**
 * The Executable's inputs that carry a spec field unchanged (or nearly: durations in ms), by the
 * spec field they come from, so that an error names what the user wrote.
 */
const EXECUTABLE_INPUT_FIELDS: { input: string; field: SpecField; toSpec?: (value: unknown) => unknown }[] = [
  { input: "peId", field: "peId" },
  { input: "imageRef", field: "image" },
  { input: "command", field: "command" },
  { input: "env", field: "env" },
  { input: "ports", field: "ports" },
  { input: "network", field: "network" },
  { input: "resources", field: "resources" },
  { input: "stop", field: "stop" },
  { input: "readiness", field: "readiness" },
  { input: "commitIntervalMs", field: "commitInterval" },
  { input: "onFailedReplacement", field: "onFailedReplacement" },
  { input: "handover", field: "handover" },
];

/**
 * For the Executable's `check`: the inputs that carry spec fields, validated as those fields, with the
 * spec's messages (values resolved after the program validated them, or written by another program).
 * A value unknown during a preview is skipped: it is validated when it is known. Throws SpecError
 * naming every bad field.
 */
export function validateExecutableInputs(inputs: Record<string, unknown>): void {
  const peId = typeof inputs.peId === "string" && !holdsUnknown(inputs.peId) ? inputs.peId : undefined;
  const problems: Problem[] = [];
  for (const { input, field } of EXECUTABLE_INPUT_FIELDS) {
    const value = inputs[input];
    if (value === undefined || holdsUnknown(value)) continue;
    const parsed = shape[field].safeParse(value);
    if (!parsed.success)
      problems.push(...parsed.error.issues.map((issue) => problemOf({ ...issue, path: [field, ...issue.path] } as never, { [field]: value }, "spec")));
  }
  if (problems.length) throw new SpecError(peId ? `"${peId}"` : "spec", problems);
}

/**
 * For the Fleet's `check` during a preview: a template holding a value unknown until `up` (an image
 * built by another resource) can be neither validated nor resolved yet, so check passes it on as it is,
 * with what the last deployment recorded (engine, image ids): the preview shows the Fleet changing,
 * "unknown until up", and `up` (when every value is known) validates and resolves it. Undefined when
 * nothing in the fleet's inputs is unknown.
 */
export function fleetUnknownUntilUp<
  N extends { template: unknown },
  O extends { engine?: unknown; imageIds?: Record<string, string>; engineIdentity?: unknown },
>(news: N, olds?: Partial<O>): (N & { engine: unknown; imageIds: Record<string, string> }) | undefined {
  if (!holdsUnknown(news.template)) return undefined;
  return {
    ...news,
    engine: olds?.engine ?? { kind: "docker" },
    imageIds: olds?.imageIds ?? {},
    ...(olds?.engineIdentity ? { engineIdentity: olds.engineIdentity } : {}),
  };
}
