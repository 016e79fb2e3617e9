// Admission for GRPCRoutes: the same checks as HTTPRoutes' (http-route.ts) on what a GRPCRoute
// can get wrong by itself, such as a method or header regex that is not RE2.
import type { GRPCRoute } from "../compiler/snapshot.ts";
import { validateRoute } from "./http-route.ts";

export const validateGRPCRoute = (route: GRPCRoute): string[] =>
  validateRoute({ kind: "GRPCRoute", route });
