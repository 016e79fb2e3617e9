// A custom plugin for the standalone demo (examples/plugins/plugins.yaml attaches it to /hello):
// greets every response with a header and refuses /hello/secret. Built by hack/plugins/build.ts
// into build/hello.wasm and build/configmap.yaml (the ConfigMap the RautaPlugin names).
import { run, config, Request, Decision } from "../../../../plugins-sdk/assemblyscript/assembly/index";

let greeting = "hello";
let secret = "/hello/secret";

function setup(): string | null {
  const c = config();
  greeting = c.getString("greeting", greeting);
  secret = c.getString("secretPath", secret);
  return null;
}

function onRequest(req: Request): Decision {
  if (req.path == secret) return Decision.reject(403, [["content-type", "text/plain"]], "not for you\n");
  return Decision.modify().setRequestHeader("x-greeting", greeting).setResponseHeader("x-greeting", greeting);
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
