// How much fuzzing a run does. The unit suite runs a fixed seed so CI is reproducible; longer or
// different runs locally:  RAUTA_FUZZ_RUNS=5000 RAUTA_FUZZ_SEED=42 npx mocha test/unit/fuzz/…
// (or node hack/fuzz/run.ts --minutes 10 for a time-boxed run over every protocol).
export const DEFAULT_SEED = 20_260_101;

export interface FuzzSettings {
  numRuns: number;
  seed: number;
}

/** `defaultRuns` cases unless RAUTA_FUZZ_RUNS says otherwise; RAUTA_FUZZ_SEED or the fixed seed. */
export function fuzzSettings(
  defaultRuns: number,
  env: NodeJS.ProcessEnv = process.env,
): FuzzSettings {
  const runs = Number(env.RAUTA_FUZZ_RUNS);
  const seed = Number(env.RAUTA_FUZZ_SEED);
  return {
    numRuns: Number.isInteger(runs) && runs > 0 ? runs : defaultRuns,
    seed: Number.isInteger(seed) ? seed : DEFAULT_SEED,
  };
}
