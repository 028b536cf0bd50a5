// The provider plugin's protocol edges, without an engine: secrets revealed for the shared runtime
// and marked again on the way out, and the type a URN names.
import { describe, expect, it } from "vitest";
import { markSecrets, revealSecrets } from "../../src/plugin/secretValues";
import { UNKNOWN_DURING_PREVIEW } from "../../src/schema/inputs";
import { typeOfUrn } from "../../src/plugin/provider";

const SIG = "4dabf18193072939515e22adb298388d";
const secret = (value: unknown) => ({ [SIG]: "1b47061264138c4ac30d75fd1eb44270", value });
const outputValue = (value?: unknown, isSecret = false) => ({
  [SIG]: "d0e6a833031e9bbcd3f4e8bde6ca49a4",
  ...(value === undefined ? {} : { value }),
  secret: isSecret,
});

describe("secrets between the engine and the shared runtime", () => {
  it("reveals nested secrets and names the top-level properties that held one", () => {
    const { plain, secretKeys } = revealSecrets({
      peId: "orders",
      env: { A: "1", TOKEN: secret("s3cret") },
      engineCredentials: secret({ tls: { key: "k" } }),
      ports: [{ container: 1 }],
    });
    expect(plain).toEqual({ peId: "orders", env: { A: "1", TOKEN: "s3cret" }, engineCredentials: { tls: { key: "k" } }, ports: [{ container: 1 }] });
    expect([...secretKeys].sort()).toEqual(["engineCredentials", "env"]);
  });

  it("output values: their value, secret when marked so, unknown when they carry none", () => {
    const { plain, secretKeys } = revealSecrets({ image: outputValue("a:1"), token: outputValue("t", true), later: outputValue() });
    expect(plain).toEqual({ image: "a:1", token: "t", later: UNKNOWN_DURING_PREVIEW });
    expect([...secretKeys]).toEqual(["token"]);
  });

  it("marks exactly those properties secret again, whatever the runtime returned for them", () => {
    const marked = markSecrets({ env: { TOKEN: "s3cret" }, generation: 2, gone: undefined }, new Set(["env", "gone"]));
    expect(marked).toEqual({ env: secret({ TOKEN: "s3cret" }), generation: 2, gone: undefined });
    expect(markSecrets({ a: 1 }, new Set())).toEqual({ a: 1 });
  });
});

describe("typeOfUrn", () => {
  it("is the resource's own type, after its parents' types", () => {
    expect(typeOfUrn("urn:pulumi:dev::app::reseat:index:ProcessingElement$reseat:index:Executable::orders-executable")).toBe("reseat:index:Executable");
    expect(typeOfUrn("urn:pulumi:dev::app::reseat:index:StateVolume::v")).toBe("reseat:index:StateVolume");
  });
});
