import { describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import { providerText } from "../../../src/provider/reseatResource";

// What Pulumi's dynamic-provider host does with a resource's `__provider`: evaluates it as a module
// with no file name and calls `handler()` (the host's requireFromString). Here, from the checkout, whose
// package self-reference resolves `reseat/provider/runtime` (dist, built by bootstrap).
function evaluate(text: string): Record<string, unknown> {
  const module = { exports: {} as { handler?: () => Record<string, unknown> } };
  new Function("exports", "require", "module", text)(module.exports, createRequire(`${process.cwd()}/`), module);
  return module.exports.handler!();
}

describe("the provider Pulumi stores per resource", () => {
  it.each(["Executable", "StateVolume", "ClaimCheck"] as const)("%s: one short line naming the package, not a path", (kind) => {
    const text = providerText(kind);
    expect(text.length).toBeLessThan(160);
    expect(text).toContain('"reseat/provider/runtime"');
    expect(text).not.toMatch(/"\/\w|[A-Z]:\\|dist\//); // no absolute path, no file of the package
  });

  it("loads the runtime's providers with the methods the host calls", () => {
    for (const kind of ["Executable", "StateVolume"] as const) {
      const provider = evaluate(providerText(kind));
      for (const method of ["check", "diff", "create", "read", "update", "delete"]) expect(typeof provider[method], `${kind}.${method}`).toBe("function");
    }
    const claimCheck = evaluate(providerText("ClaimCheck"));
    for (const method of ["check", "diff", "create", "update"]) expect(typeof claimCheck[method]).toBe("function");
  });
});
