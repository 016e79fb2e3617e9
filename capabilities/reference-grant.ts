import { Capability } from "pepr";
import { watchKind } from "./common.ts";
import { ReferenceGrant } from "./kinds.ts";

export const ReferenceGrantCapability = new Capability({
  name: "reference-grant",
  description: "Tracks ReferenceGrants that allow cross-namespace backends and certificates.",
});

watchKind(ReferenceGrantCapability.When, ReferenceGrant, "ReferenceGrant");
