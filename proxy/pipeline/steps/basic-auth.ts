// A route's basic auth (its SecurityPolicy's basicAuth): the user and password of the request's
// `Authorization: Basic` header checked against the `.htpasswd` of a Secret, read per request
// from the SecretProvider so a rotated Secret applies at once. 401 with a Basic challenge
// without valid credentials; 500 while the Secret is not loaded (the gateway's fault, never a
// way in). A bcrypt check costs milliseconds of CPU, so a user and password that passed are
// remembered (by digest, never in the clear) until the file changes.
import { createHash } from "node:crypto";
import type { BasicAuth } from "../../config/schema.ts";
import { parseHtpasswd, verifyPassword } from "../../filters/htpasswd.ts";
import type { Htpasswd } from "../../filters/htpasswd.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { SecretData, SecretProvider } from "../../tls/secrets.ts";
import type { LocalReply, RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

/** how many users-and-passwords that passed are remembered, per route */
const REMEMBERED = 1024;

/** The user and password of an `Authorization: Basic` value, or null. */
export function basicCredentials(header: string | undefined): [string, string] | null {
  if (header === undefined) return null;
  const m = /^Basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

export class BasicAuthStep implements RequestStep {
  readonly name = "basic-auth";
  private readonly settings: BasicAuth;
  private readonly secrets: SecretProvider;
  private readonly metrics: Metrics;
  private readonly challenge: string;
  private readonly forwardUsernameHeader: string | undefined;
  private parsedFrom: SecretData | undefined;
  private parsed: Htpasswd | undefined;
  private readonly passed = new Set<string>();

  constructor(settings: BasicAuth, secrets: SecretProvider, metrics: Metrics) {
    this.settings = settings;
    this.secrets = secrets;
    this.metrics = metrics;
    this.forwardUsernameHeader = settings.forwardUsernameHeader?.toLowerCase();
    this.challenge = `Basic realm="${settings.realm.replace(/["\\]/g, "\\$&")}", charset="UTF-8"`;
  }

  private users(): Htpasswd | undefined {
    const data = this.secrets.data(this.settings.secretRef);
    if (data !== this.parsedFrom) {
      this.parsedFrom = data;
      const text = data?.[".htpasswd"];
      this.parsed = text === undefined ? undefined : parseHtpasswd(text);
      this.passed.clear();
    }
    return this.parsed;
  }

  private deny(ctx: RequestContext, result: "missing" | "denied"): LocalReply {
    this.metrics.credentialAuth.labels(ctx.route.id, "basic", result).inc();
    return {
      status: 401,
      detail: result === "missing" ? "credentials required" : "invalid user or password",
      headers: [["www-authenticate", this.challenge]],
    };
  }

  private allow(ctx: RequestContext, user: string): null {
    this.metrics.credentialAuth.labels(ctx.route.id, "basic", "allowed").inc();
    if (this.forwardUsernameHeader !== undefined) ctx.setHeader(this.forwardUsernameHeader, user);
    return null;
  }

  run(ctx: RequestContext): StepResult | Promise<StepResult> {
    if (this.settings.unusable !== undefined) {
      this.metrics.credentialAuth.labels(ctx.route.id, "basic", "unavailable").inc();
      return { status: 500, detail: `basic auth unavailable: ${this.settings.unusable}` };
    }
    const users = this.users();
    if (users === undefined) {
      this.metrics.credentialAuth.labels(ctx.route.id, "basic", "unavailable").inc();
      const { namespace, name } = this.settings.secretRef;
      return {
        status: 500,
        detail: `basic auth users (Secret ${namespace}/${name}, key .htpasswd) are not loaded`,
      };
    }
    const credentials = basicCredentials(ctx.header("authorization"));
    if (credentials === null) return this.deny(ctx, "missing");
    const [user, password] = credentials;
    const hash = users.users.get(user);
    if (hash === undefined) return this.deny(ctx, "denied");
    const digest = createHash("sha256").update(user).update("\0").update(password).digest("hex");
    if (this.passed.has(digest)) return this.allow(ctx, user);
    const remember = (ok: boolean): StepResult => {
      if (!ok) return this.deny(ctx, "denied");
      // the file may have changed while bcrypt worked: only remember against the current one
      if (this.parsed === users) {
        if (this.passed.size >= REMEMBERED) this.passed.delete(this.passed.values().next().value!);
        this.passed.add(digest);
      }
      return this.allow(ctx, user);
    };
    const ok = verifyPassword(hash, password);
    return typeof ok === "boolean" ? remember(ok) : ok.then(remember);
  }
}
