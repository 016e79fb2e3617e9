import { Capability, a } from "pepr";
import { watchKind } from "./common.ts";

export const BackendsCapability = new Capability({
  name: "backends",
  description:
    "Tracks Services, EndpointSlices, TLS Secrets and Namespaces that routes and listeners refer to.",
});

const { When } = BackendsCapability;
watchKind(When, a.Service, "Service");
watchKind(When, a.EndpointSlice, "EndpointSlice");
watchKind(When, a.Secret, "Secret");
watchKind(When, a.Namespace, "Namespace");
