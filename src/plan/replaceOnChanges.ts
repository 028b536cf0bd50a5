// Pulumi's `replaceOnChanges` resource option, for reseat's own resources. The engine applies it from
// the property names a provider's diff reports as changed, and Pulumi's dynamic-provider host reports
// none (only `changes` and `replaces`), so the option alone would do nothing. reseat's resources take
// the option's paths as an input too, and their diff turns a change at one of them into a replacement.
// Pure: no engine calls.
import { sameValue } from "./executablePlan";

/** The input property under which a resource records the `replaceOnChanges` paths it was given. */
export const REPLACE_ON_CHANGES_KEY = "replaceOnChanges";

/**
 * The given paths whose value differs between the recorded and the new inputs. A path is a property
 * name, a dotted path into objects (`env.API_TOKEN`, `template.commitInterval`), or `*` (any input).
 */
export function changedReplaceOnChanges(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  paths: readonly string[] | undefined,
  ignore: readonly string[] = [],
): string[] {
  if (!paths?.length) return [];
  const changed: string[] = [];
  for (const path of paths) {
    if (path === "*") {
      const keys = new Set([...Object.keys(olds), ...Object.keys(news)].filter((k) => !ignore.includes(k) && k !== REPLACE_ON_CHANGES_KEY));
      for (const key of keys) if (!sameValue(olds[key], news[key])) changed.push(key);
      continue;
    }
    if (!sameValue(valueAt(olds, path), valueAt(news, path))) changed.push(path);
  }
  return [...new Set(changed)];
}

function valueAt(root: unknown, path: string): unknown {
  let value = root;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
