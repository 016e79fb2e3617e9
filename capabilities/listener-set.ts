import { Capability } from "pepr";
import { watchKind } from "./common.ts";
import { ListenerSet } from "./kinds.ts";

// No admission check: the CRD's CEL rules cover what the API makes invalid; whether a Gateway
// admits the ListenerSet and which of its listeners conflict is reported in its status.
export const ListenerSetCapability = new Capability({
  name: "listener-set",
  description:
    "Tracks ListenerSets: listeners attached to a Gateway from other objects (and namespaces), as the Gateway's allowedListeners permit.",
});

watchKind(ListenerSetCapability.When, ListenerSet, "ListenerSet");
