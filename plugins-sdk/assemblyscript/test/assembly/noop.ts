// The smallest SDK plugin: CONTINUE, i.e. an empty output. Its size and per-call cost are the
// floor every AssemblyScript plugin starts from (test/unit/plugins/builtins.spec.ts measures it).
import { run, Request, Decision } from "../../assembly/index";

function onRequest(_req: Request): Decision {
  return Decision.continue_();
}

export function on_request(): i32 {
  return run(onRequest);
}
