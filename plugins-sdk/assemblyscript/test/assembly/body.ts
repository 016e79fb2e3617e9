// A needsBody plugin for the proxy's body tests (test/unit/plugins/body.spec.ts): it refuses a
// request whose body holds "forbidden" (403) and withholds a response whose body holds "secret"
// (502); otherwise it says what it saw, "<bytes>:<truncated>", in x-body-seen (request header,
// upstream) and x-response-body-seen (response header, downstream).
import { run, Request, Decision, Modify } from "../../assembly/index";

function seen(req: Request): string {
  return req.body().length.toString() + ":" + (req.bodyTruncated ? "truncated" : "whole");
}

function onRequest(req: Request): Decision {
  if (req.bodyText().includes("forbidden")) return Decision.reject(403, [["content-type", "text/plain"]], "body refused\n");
  return new Modify().setRequestHeader("x-body-seen", seen(req));
}

function onResponse(req: Request): Decision {
  if (req.bodyText().includes("secret")) return Decision.reject(502, [["content-type", "text/plain"]], "response withheld\n");
  return new Modify().setResponseHeader("x-response-body-seen", seen(req));
}

export function on_request(): i32 {
  return run(onRequest);
}

export function on_response(): i32 {
  return run(onResponse);
}
