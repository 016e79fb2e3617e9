// The --tracing-* flags of `rauta proxy` and `rauta serve`: request tracing for listeners whose
// config sets none (a ClientTrafficPolicy's tracing section wins over them).
import { Tracing } from "../config/schema.ts";
import type { TracingSettings } from "../observability/tracing.ts";

export const TRACING_OPTIONS = {
  "tracing-endpoint": { type: "string" },
  "tracing-sample-ratio": { type: "string" },
  "tracing-ignore-parent": { type: "boolean" },
  "tracing-service-name": { type: "string" },
} as const;

export const TRACING_USAGE = `      --tracing-endpoint <url>      export request spans (OTLP/HTTP) to this collector
                                    ("http://127.0.0.1:4318"; /v1/traces when no path)
      --tracing-sample-ratio <r>    share of new traces recorded, 0..1 (default 1)
      --tracing-ignore-parent       sample by the ratio even when the client's traceparent
                                    says sampled or not (default: follow it)
      --tracing-service-name <s>    service.name of the spans (default rauta)
`;

/** The settings the flags ask for: null without --tracing-endpoint, or why they are wrong. */
export function tracingFromFlags(
  values: Record<string, unknown>,
): TracingSettings | null | { error: string } {
  const endpoint = values["tracing-endpoint"] as string | undefined;
  const ratio = values["tracing-sample-ratio"] as string | undefined;
  const name = values["tracing-service-name"] as string | undefined;
  if (endpoint === undefined) {
    const stray = ["tracing-sample-ratio", "tracing-ignore-parent", "tracing-service-name"].find(
      k => values[k] !== undefined,
    );
    return stray === undefined ? null : { error: `--${stray} needs --tracing-endpoint` };
  }
  const samplingRatio = ratio === undefined ? 1 : Number(ratio);
  if (ratio !== undefined && (ratio.trim() === "" || !(samplingRatio >= 0 && samplingRatio <= 1)))
    return { error: `--tracing-sample-ratio: expected a number 0..1, got ${ratio}` };
  const parsed = Tracing.safeParse({
    endpoint,
    samplingRatio,
    parentBased: values["tracing-ignore-parent"] !== true,
    serviceName: name ?? "rauta",
  });
  if (!parsed.success) {
    const bad = parsed.error.issues[0]!;
    return {
      error:
        bad.path[0] === "endpoint"
          ? `--tracing-endpoint: expected an http(s) URL, got ${endpoint}`
          : `--tracing-${String(bad.path[0])}: ${bad.message}`,
    };
  }
  return parsed.data;
}
