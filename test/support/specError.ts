// The SpecError a piece of work throws, for tests of field-named refusals.
import { SpecError } from "../../src/schema/processingElement";

/** Runs `work` and returns the SpecError it throws; fails when it throws nothing or something else. */
export function rejection(work: () => unknown): SpecError {
  try {
    work();
  } catch (error) {
    if (error instanceof SpecError) return error;
    throw error;
  }
  throw new Error("expected a SpecError");
}
