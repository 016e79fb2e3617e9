import type { Condition, ConditionStatus } from "./types.ts";

// Builds conditions for one object: every condition carries the object's generation and the
// caller's clock, so compile() stays pure.
export function conditionFactory(generation: number | undefined, now: string) {
  return (
    type: string,
    status: ConditionStatus | boolean,
    reason: string,
    message: string,
  ): Condition => ({
    type,
    status: typeof status === "boolean" ? (status ? "True" : "False") : status,
    reason,
    message,
    lastTransitionTime: now,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  });
}
export type MakeCondition = ReturnType<typeof conditionFactory>;

// A problem found while translating: its reason feeds a condition, its message tells the user
// which object and field to fix.
export interface Problem {
  reason: string;
  message: string;
}

// Translation helpers return either a value or the Problem that prevents it.
export function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "reason" in value && "message" in value;
}

// One condition can carry only one reason: the first problem's, with every message so that the
// user sees everything to fix at once.
export function combineProblems(problems: readonly Problem[]): Problem | undefined {
  if (problems.length === 0) return undefined;
  return { reason: problems[0]!.reason, message: problems.map(p => p.message).join("; ") };
}
