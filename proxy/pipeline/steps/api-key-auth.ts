// A route's API keys (its SecurityPolicy's apiKeyAuth), as Envoy Gateway's: every key of the
// referenced Secrets is a client id and its value that client's key. The request's key is the
// first one found where extractFrom says (headers, then query parameters, then cookies, entry by
// entry); a known one lets the request through (its client id forwarded when asked, the key
// itself removed with sanitize), anything else gets 401. Keys are compared by SHA-256 digest, so
// a lookup takes the same time whatever prefix an attacker guessed.
import { createHash } from "node:crypto";
import type { ApiKeyAuth } from "../../config/schema.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { SecretData, SecretProvider } from "../../tls/secrets.ts";
import { firstCookie } from "../../upstream/hash-key.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

const digestOf = (key: string) => createHash("sha256").update(key).digest("base64");

/** Where a key was found, so that sanitize can take it out again. */
type Found =
  | { from: "header"; name: string; value: string }
  | { from: "param"; name: string; value: string }
  | { from: "cookie"; name: string; value: string };

/** The value of query parameter `name` in `query` (without "?"), or undefined. */
function queryParam(query: string, name: string): string | undefined {
  if (query === "") return undefined;
  for (const [k, v] of new URLSearchParams(query)) if (k === name) return v;
  return undefined;
}

export class ApiKeyAuthStep implements RequestStep {
  readonly name = "api-key-auth";
  private readonly settings: ApiKeyAuth;
  private readonly secrets: SecretProvider;
  private readonly metrics: Metrics;
  /** settings.extractFrom with header names lowercased once, as requests hold them */
  private readonly extractFrom: ApiKeyAuth["extractFrom"];
  private readonly forwardClientIdHeader: string | undefined;
  private tableFrom: ReadonlyArray<SecretData | undefined> = [];
  /** key digest → client id; null while a Secret is not loaded */
  private table: Map<string, string> | null = null;

  constructor(settings: ApiKeyAuth, secrets: SecretProvider, metrics: Metrics) {
    this.settings = settings;
    this.secrets = secrets;
    this.metrics = metrics;
    this.extractFrom = settings.extractFrom.map(e => ({
      ...e,
      headers: e.headers.map(h => h.toLowerCase()),
    }));
    this.forwardClientIdHeader = settings.forwardClientIdHeader?.toLowerCase();
  }

  private clients(): Map<string, string> | null {
    const data = this.settings.secretRefs.map(ref => this.secrets.data(ref));
    if (data.length !== this.tableFrom.length || data.some((d, i) => d !== this.tableFrom[i])) {
      this.tableFrom = data;
      if (data.some(d => d === undefined)) this.table = null;
      else {
        const table = new Map<string, string>();
        // the first Secret naming a key keeps it, as the refs are listed
        for (const d of data)
          for (const [client, key] of Object.entries(d!)) {
            const digest = digestOf(key);
            if (key !== "" && !table.has(digest)) table.set(digest, client);
          }
        this.table = table;
      }
    }
    return this.table;
  }

  private find(ctx: RequestContext): Found | null {
    for (const e of this.extractFrom) {
      for (const name of e.headers) {
        const value = ctx.header(name);
        if (value !== undefined) return { from: "header", name, value };
      }
      for (const name of e.params) {
        const value = queryParam(ctx.query, name);
        if (value !== undefined) return { from: "param", name, value };
      }
      for (const name of e.cookies) {
        const value = firstCookie(ctx.header("cookie"), name);
        if (value !== undefined) return { from: "cookie", name, value };
      }
    }
    return null;
  }

  private sanitize(ctx: RequestContext, found: Found): void {
    if (found.from === "header") ctx.setHeader(found.name, null);
    else if (found.from === "param") ctx.editQuery(params => params.delete(found.name));
    else {
      const rest = (ctx.header("cookie") ?? "")
        .split(";")
        .filter(part => part.slice(0, part.indexOf("=")).trim() !== found.name)
        .map(part => part.trim())
        .join("; ");
      ctx.setHeader("cookie", rest === "" ? null : rest);
    }
  }

  run(ctx: RequestContext): StepResult {
    const count = (result: string) =>
      this.metrics.credentialAuth.labels(ctx.route.id, "api_key", result).inc();
    if (this.settings.unusable !== undefined) {
      count("unavailable");
      return { status: 500, detail: `API keys unavailable: ${this.settings.unusable}` };
    }
    const clients = this.clients();
    if (clients === null) {
      count("unavailable");
      const missing = this.settings.secretRefs.filter(ref => this.secrets.data(ref) === undefined);
      return {
        status: 500,
        detail: `API keys (Secret ${missing.map(r => `${r.namespace}/${r.name}`).join(", ")}) are not loaded`,
      };
    }
    const found = this.find(ctx);
    if (found === null) {
      count("missing");
      return { status: 401, detail: "API key required" };
    }
    const client = clients.get(digestOf(found.value));
    if (client === undefined) {
      count("denied");
      return { status: 401, detail: "API key not valid" };
    }
    count("allowed");
    if (this.settings.sanitize) this.sanitize(ctx, found);
    if (this.forwardClientIdHeader !== undefined) ctx.setHeader(this.forwardClientIdHeader, client);
    return null;
  }
}
