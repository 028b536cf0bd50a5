// reseat's bundled program (Pulumi.yaml `main`, run by plain `pulumi up` and by the `reseat` CLI):
// processing elements declared in stack config (stacks/Pulumi.<stack>.yaml, key
// `reseat:processingElements`). Every spec is validated before any resource is declared, so an invalid
// spec anywhere fails preview and creates nothing.
import * as pulumi from "@pulumi/pulumi";
import { ProcessingElement, validateProcessingElement } from "../components";
import { SpecError } from "../src/schema/processingElement";
import { findDuplicates } from "../src/schema/uniqueness";

async function program(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config("reseat");
  const declared = config.requireObject<unknown>("processingElements");
  if (!Array.isArray(declared)) {
    throw new Error("reseat: invalid stack config:\n  - processingElements: expected a list of processing element specs");
  }
  const specs = declared.map((spec, index) => {
    const name = spec && typeof spec === "object" && "peId" in spec ? String(spec.peId) : `processingElements[${index}]`;
    return { name, spec: validateProcessingElement(name, spec) };
  });
  // Collisions between specs (peId, volume, host port) fail here, before any resource is declared.
  const duplicates = findDuplicates(specs.map(({ spec }, index) => ({ subject: `processingElements[${index}]`, spec })));
  if (duplicates.length) throw new SpecError("stack config", duplicates);
  const pes = specs.map(({ name }, index) => new ProcessingElement(name, declared[index] as never));
  return {
    processingElements: Object.fromEntries(pes.map((pe, index) => [specs[index]!.spec.peId, pe.summary])),
  };
}

// The module itself is the program (module.exports), as `pulumi up` wants it: an `export default`
// would be run by the reseat CLI but exported by the Node.js language host as an output named "default".
export = program;
