import { createHash } from "node:crypto";
import type { CompiledConfig, CompiledConfigBody } from "./schema.ts";
import { CONFIG_API_VERSION } from "./schema.ts";

// Canonical JSON: object keys sorted, arrays kept in order (their order is meaningful and
// already deterministic), undefined members dropped. Same value ⇒ same bytes.
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(v => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export function hashConfigBody(body: CompiledConfigBody): string {
  return `sha256:${createHash("sha256").update(canonicalJson(body)).digest("hex")}`;
}

export function sealConfig(body: CompiledConfigBody, generation: number): CompiledConfig {
  return { ...body, apiVersion: CONFIG_API_VERSION, generation, hash: hashConfigBody(body) };
}

export function bodyOf(config: CompiledConfig): CompiledConfigBody {
  const { generation: _generation, hash: _hash, ...body } = config;
  return body;
}
