// Secrets as the plugin protocol carries them. The provider plugin tells the engine it accepts
// secrets (@pulumi/pulumi/provider's Configure), so a secret input reaches check/create/… wrapped in
// a marker object, where the dynamic-provider host got the plain value and the engine re-marked the
// outputs. The runtime (src/provider/runtime.ts) is shared by both faces and takes plain values: the
// plugin reveals the values on the way in and marks the same top-level properties secret on the way
// out, as the engine does for the dynamic face. Pure, so unit-tested without an engine.

/** Pulumi's wire signatures (sdk: runtime/rpc specialSigKey, specialSecretSig, specialOutputValueSig). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4";

import { UNKNOWN_DURING_PREVIEW } from "../schema/inputs";

type Props = Record<string, unknown>;

function reveal(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) {
    const items = value.map(reveal);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (value === null || typeof value !== "object") return { value, secret: false };
  const object = value as Props;
  if (object[SIG_KEY] === SECRET_SIG) return { value: reveal(object.value).value, secret: true };
  if (object[SIG_KEY] === OUTPUT_VALUE_SIG) {
    const inner = "value" in object ? reveal(object.value) : { value: UNKNOWN_DURING_PREVIEW, secret: false };
    return { value: inner.value, secret: inner.secret || object.secret === true };
  }
  let secret = false;
  const plain: Props = {};
  for (const [key, item] of Object.entries(object)) {
    const revealed = reveal(item);
    plain[key] = revealed.value;
    secret ||= revealed.secret;
  }
  return { value: plain, secret };
}

/** The properties with every secret marker removed, and which top-level properties held a secret. */
export function revealSecrets(props: Props | undefined): { plain: Props; secretKeys: Set<string> } {
  const plain: Props = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(props ?? {})) {
    const revealed = reveal(value);
    plain[key] = revealed.value;
    if (revealed.secret) secretKeys.add(key);
  }
  return { plain, secretKeys };
}

/** The properties with those top-level keys marked secret again (the rest as they are). */
export function markSecrets<T extends Props | undefined>(props: T, secretKeys: ReadonlySet<string>): T {
  if (!props || secretKeys.size === 0) return props;
  const marked: Props = {};
  for (const [key, value] of Object.entries(props)) {
    marked[key] = secretKeys.has(key) && value !== undefined ? { [SIG_KEY]: SECRET_SIG, value } : value;
  }
  return marked as T;
}
