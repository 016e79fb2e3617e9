// A RAUTA plugin in AssemblyScript: tags every response and refuses one path.
// Build: npx asc assembly/index.ts --config asconfig.json   (or node hack/plugins/build.ts in the repo)
// Contract: plugins-sdk/ABI.md. SDK reference: plugins-sdk/assemblyscript/README.md.
import { run, config, Request, Decision } from "../../assembly/index";

// Filled once by setup() from the RautaPlugin's spec.config, e.g. {"blockedPath": "/admin"}.
// What setup allocates lives for the instance; what a call allocates is freed when it returns.
let blockedPath = "/forbidden";
let tag = "hello from a RAUTA plugin";

function setup(): string | null {
  const c = config();
  blockedPath = c.getString("blockedPath", blockedPath);
  tag = c.getString("tag", tag);
  if (!blockedPath.startsWith("/")) return "blockedPath must start with /";
  return null; // ready
}

function onRequest(req: Request): Decision {
  if (req.path == blockedPath || req.path.startsWith(blockedPath + "/")) {
    return Decision.reject(403, [["content-type", "text/plain"]], "forbidden\n");
  }
  // a response op in on_request applies to the response this request eventually gets
  return Decision.modify().setResponseHeader("x-plugin", tag);
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
