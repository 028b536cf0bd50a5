// Spec fields as Pulumi Inputs, the pure part: what waits for an Output, what is validated now (with
// the plain spec's messages), what must be known, and which Executable input reads which fields.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { EXECUTABLE_INPUT_SOURCES, executableFields } from "../../../src/schema/desired";
import {
  UNKNOWN_DURING_PREVIEW,
  containsDeferred,
  fleetUnknownUntilUp,
  deferredPaths,
  isDeferred,
  parseKnownProcessingElement,
  specFields,
  validateExecutableInputs,
  withoutSecretValues,
} from "../../../src/schema/inputs";
import { parseGroupInputs } from "../../../src/schema/group";
import { rejection } from "../../support/specError";

const base = { peId: "orders", image: "reseat-demo-workload:v1" };

describe("deferred values", () => {
  it("are Outputs (secret or not) and Promises; plain values, objects and arrays are not", () => {
    expect(isDeferred(pulumi.output("x"))).toBe(true);
    expect(isDeferred(pulumi.secret("x"))).toBe(true);
    expect(isDeferred(Promise.resolve("x"))).toBe(true);
    for (const plain of ["x", 1, null, undefined, {}, [], { apply: "no" }]) expect(isDeferred(plain)).toBe(false);
  });

  it("are found at any depth, by path; a secret value where the schema always took an Output is not waited for", () => {
    const input = {
      ...base,
      env: { A: "1", B: pulumi.secret("token") },
      ports: [{ container: pulumi.output(80) }],
      persistentStore: { kind: "postgres", database: "d", user: "u", password: pulumi.secret("pw") },
    };
    expect(deferredPaths(input)).toEqual([
      ["env", "B"],
      ["ports", "0", "container"],
    ]);
    expect(deferredPaths(input, { secrets: true })).toContainEqual(["persistentStore", "password"]);
    expect(containsDeferred({ persistentStore: { password: pulumi.secret("pw") } })).toBe(false);
    expect(withoutSecretValues({ persistentStore: { kind: "postgres", password: pulumi.secret("pw") } })).toEqual({
      persistentStore: { kind: "postgres", password: "(secret)" },
    });
  });
});

describe("parseKnownProcessingElement", () => {
  it("a plain spec: exactly parseProcessingElement", () => {
    const spec = { ...base, env: { A: "1" }, commitInterval: "2s" };
    expect(parseKnownProcessingElement(spec)).toEqual({ spec: parseProcessingElement(spec), deferred: [] });
  });

  it("accepts Outputs and Promises anywhere but the fields that decide the resources; no spec until they resolve", () => {
    const known = parseKnownProcessingElement({
      ...base,
      image: pulumi.output("app:v2"),
      env: { A: pulumi.secret("s"), B: Promise.resolve("b") },
      commitInterval: pulumi.output("5s"),
      volume: { name: pulumi.output("data") },
    });
    expect(known.spec).toBeUndefined();
    expect(known.deferred.map((path) => path.join(".")).sort()).toEqual(["commitInterval", "env.A", "env.B", "image", "volume.name"]);
  });

  it("validates the known fields with the plain spec's messages, naming every bad one and none that waits", () => {
    const error = rejection(() =>
      parseKnownProcessingElement(
        { ...base, image: pulumi.output("whatever"), env: { A: pulumi.output("x"), B: 7 }, commitInterval: "0s", colour: "red" },
        '"orders"',
      ),
    );
    expect(error.problems.map((p) => p.field).sort()).toEqual(["colour", "commitInterval", "env.B"]);
    expect(error.problems).toContainEqual({ field: "env.B", expected: "expected a string value" });
    expect(error.message).toMatch(/^reseat: invalid processing element "orders":\n {2}- /);
  });

  it("refuses an Output where the value decides which resources are declared, naming the field", () => {
    const error = rejection(() =>
      parseKnownProcessingElement({
        ...base,
        persistentStore: { kind: pulumi.output("none") },
        volume: { retainOnDestroy: pulumi.output(false) },
        docker: { registryAuth: { server: "r.example", username: "u", passwordSecret: pulumi.output("key") } },
      }),
    );
    expect(error.problems.map((p) => p.field).sort()).toEqual(["docker.registryAuth.passwordSecret", "persistentStore.kind", "volume.retainOnDestroy"]);
    for (const problem of error.problems) expect(problem.expected).toMatch(/^expected a value known when the program runs, not an Output or Promise: /);
    const kubernetes = rejection(() => parseKnownProcessingElement({ ...base, kubernetes: pulumi.output({ namespace: "x" }) }));
    expect(kubernetes.problems).toEqual([{ field: "kubernetes", expected: expect.stringContaining("whether the PE runs on Docker or Kubernetes") }]);
  });

  it("refuses one Output of the whole spec", () => {
    expect(rejection(() => parseKnownProcessingElement(pulumi.output(base))).problems).toEqual([
      { field: "(spec)", expected: expect.stringContaining("each of its fields may be an Output") },
    ]);
  });

  it("engine rules are judged on what is known (a Docker-only field with kubernetes)", () => {
    const error = rejection(() => parseKnownProcessingElement({ ...base, image: pulumi.output("x"), kubernetes: {}, network: "host" }));
    expect(error.problems).toEqual([{ field: "network", expected: expect.stringContaining("Docker-only") }]);
  });
});

describe("specFields", () => {
  it("parses the given fields on their own: defaults filled, durations in ms", () => {
    expect(specFields(["commitInterval", "volume", "env"], ["2s", undefined, { A: "1" }])).toEqual({
      commitInterval: 2000,
      volume: { driver: "local", mountPath: "/state", retainOnDestroy: true },
      env: { A: "1" },
    });
  });

  it("throws a SpecError naming the field when one is invalid", () => {
    expect(rejection(() => specFields(["env"], [{ A: 1 }])).problems).toEqual([{ field: "env.A", expected: "expected a string value" }]);
  });
});

describe("EXECUTABLE_INPUT_SOURCES", () => {
  const specs = [
    { ...base },
    {
      ...base,
      command: ["node", "app.js"],
      env: { A: "1" },
      ports: [{ container: 8080, host: 18080 }],
      resources: { memoryMiB: 64 },
      volume: { name: "data", mountPath: "/data" },
    },
    {
      ...base,
      runAsUser: 1000,
      runAsGroup: 2000,
      readiness: { logLine: "ready" },
      failureBackoff: { initial: "2s" },
      onFailedReplacement: "leave-stopped",
      docker: { host: "tcp://h:2376" },
    },
    { ...base, kubernetes: { namespace: "ns", nodeSelector: { disk: "ssd" }, status: { port: 8080 } }, readiness: { httpGet: { port: 8080 } } },
  ];

  it("each input, computed from its own fields only, is what executableFields gives", () => {
    for (const input of specs) {
      const spec = parseProcessingElement(input);
      const whole = executableFields(spec) as Record<string, unknown>;
      for (const [name, source] of Object.entries(EXECUTABLE_INPUT_SOURCES)) {
        const own = specFields(
          source.from,
          source.from.map((field) => (input as Record<string, unknown>)[field]),
        );
        expect((source.value as (s: unknown) => unknown)(own), `${name} of ${JSON.stringify(input)}`).toEqual(whole[name]);
      }
    }
  });

  it("executableFields leaves user and kubernetes out when unset, as before", () => {
    const fields = executableFields(parseProcessingElement(base));
    expect("user" in fields).toBe(false);
    expect("kubernetes" in fields).toBe(false);
    expect(Object.keys(fields)).toEqual([
      "peId",
      "imageRef",
      "command",
      "env",
      "ports",
      "network",
      "resources",
      "volumeName",
      "mountPath",
      "stop",
      "readiness",
      "commitIntervalMs",
      "failureBackoff",
      "onFailedReplacement",
      "engine",
    ]);
  });
});

describe("validateExecutableInputs (the Executable's check)", () => {
  const inputs = executableFields(parseProcessingElement({ ...base, env: { A: "1" } })) as unknown as Record<string, unknown>;

  it("passes inputs made from a valid spec", () => {
    expect(() => validateExecutableInputs(inputs)).not.toThrow();
  });

  it("names the spec fields of late values that are invalid, all in one error", () => {
    const error = rejection(() => validateExecutableInputs({ ...inputs, imageRef: "Not A Ref", env: { A: 5 }, commitIntervalMs: 5 }));
    expect(error.subject).toBe('"orders"');
    expect(error.problems.map((p) => p.field).sort()).toEqual(["commitInterval", "env.A", "image"]);
    expect(error.problems).toContainEqual({ field: "image", expected: expect.stringContaining("expected a Docker image reference") });
  });

  it("skips values unknown during a preview", () => {
    expect(() =>
      validateExecutableInputs({ ...inputs, imageRef: UNKNOWN_DURING_PREVIEW, env: { A: UNKNOWN_DURING_PREVIEW }, ports: UNKNOWN_DURING_PREVIEW }),
    ).not.toThrow();
  });
});

describe("parseGroupInputs", () => {
  const keep = (value: unknown) => value;

  it("validates the known template fields now; members whose fields wait have no spec yet", () => {
    const group = parseGroupInputs(
      { name: "g", replicas: 2, template: { image: pulumi.output("app:v1"), env: { PORT: "{{ordinal + 18300}}" } } },
      undefined,
      keep,
    );
    expect(group.members.map((m) => [m.peId, m.spec])).toEqual([
      ["g-0", undefined],
      ["g-1", undefined],
    ]);
    expect(group.members[1]!.input.env).toEqual({ PORT: "18301" });
  });

  it("reports bad known template fields as parseGroup does", () => {
    const error = rejection(() =>
      parseGroupInputs({ name: "g", replicas: 1, template: { image: pulumi.output("x"), commitInterval: "soon" } }, undefined, keep),
    );
    expect(error.problems).toEqual([{ field: "template.commitInterval", expected: expect.stringContaining("duration") }]);
  });

  it("refuses Outputs for replicas, rollout and the whole template", () => {
    const error = rejection(() =>
      parseGroupInputs(
        { name: "g", replicas: pulumi.output(2), template: pulumi.output({ image: "x" }), rollout: { partition: pulumi.output(1) } },
        undefined,
        keep,
      ),
    );
    expect(error.problems.map((p) => p.field).sort()).toEqual(["replicas", "rollout.partition", "template"]);
  });

  it("gives each member's deferred template values to the program, with their path and the member's placeholders", () => {
    const seen: { field: string; peId: string }[] = [];
    parseGroupInputs(
      {
        name: "g",
        replicas: 2,
        template: {
          image: "app:v1",
          env: { X: pulumi.output("{{peId}}") },
          persistentStore: { kind: "postgres", database: "d", user: "u", password: pulumi.secret("pw") },
        },
      },
      undefined,
      (value, field, values) => {
        seen.push({ field: field.join("."), peId: values.peId });
        return value;
      },
    );
    // The password is never substituted in.
    expect(seen).toEqual([
      { field: "env.X", peId: "g-0" },
      { field: "env.X", peId: "g-1" },
    ]);
  });
});

describe("fleetUnknownUntilUp (the Fleet's check during a preview)", () => {
  const fields = { name: "f", replicas: 2, rollout: { maxUnavailable: 1, partition: 0 }, project: "p", stack: "s" };

  it("nothing to do when the template is known", () => {
    expect(fleetUnknownUntilUp({ ...fields, template: { image: "app:v1" } })).toBeUndefined();
  });

  it("a template holding an unknown is passed on with the last deployment's engine and images", () => {
    const olds = { engine: { kind: "docker", host: "tcp://h:2376" }, imageIds: { "app:v1": "sha256:1" }, engineIdentity: { id: "e" } };
    expect(fleetUnknownUntilUp({ ...fields, template: { image: UNKNOWN_DURING_PREVIEW } }, olds)).toEqual({
      ...fields,
      template: { image: UNKNOWN_DURING_PREVIEW },
      ...olds,
    });
    expect(fleetUnknownUntilUp({ ...fields, template: UNKNOWN_DURING_PREVIEW })).toEqual({
      ...fields,
      template: UNKNOWN_DURING_PREVIEW,
      engine: { kind: "docker" },
      imageIds: {},
    });
  });
});
