// The problems a rejected spec reports (field + expectation), for the spec tests.
import { SpecError, parseProcessingElement } from "../../../src/schema/processingElement";

export function problemsOf(input: unknown): { field: string; expected: string }[] {
  try {
    parseProcessingElement(input);
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
  throw new Error("expected the spec to be rejected");
}
