// What compile() returns besides the config: the status of every object it was given that
// belongs to us, shaped exactly as the Gateway API status subresources.
import type { CompiledConfig } from "../../proxy/config/index.ts";
import type { BuiltinSchemas } from "./plugin-config.ts";
import type { GatewayApiChannel } from "./features.ts";

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ParentRefStatus {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface GatewayClassStatus {
  kind: "GatewayClass";
  name: string;
  status: { conditions: Condition[]; supportedFeatures?: Array<{ name: string }> };
}

export interface ListenerStatus {
  name: string;
  supportedKinds: Array<{ group: string; kind: string }>;
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayStatus {
  kind: "Gateway";
  namespace: string;
  name: string;
  status: {
    addresses?: Array<{ type: string; value: string }>;
    conditions: Condition[];
    listeners: ListenerStatus[];
    /** ListenerSets attached and accepted (absent: none) */
    attachedListenerSets?: number;
  };
}

export interface ListenerSetStatus {
  kind: "ListenerSet";
  namespace: string;
  name: string;
  status: { conditions: Condition[]; listeners: ListenerStatus[] };
}

export interface HTTPRouteStatus {
  kind: "HTTPRoute" | "GRPCRoute" | "TLSRoute";
  namespace: string;
  name: string;
  status: {
    parents: Array<{ parentRef: ParentRefStatus; controllerName: string; conditions: Condition[] }>;
  };
}

export interface RautaPluginStatus {
  kind: "RautaPlugin";
  namespace: string;
  name: string;
  status: { observedGeneration?: number; digest?: string; conditions: Condition[] };
}

/** A policy's status (GEP-713): one entry per ancestor (Gateway, or a target that failed). */
export interface PolicyStatus<K extends string = string> {
  kind: K;
  namespace: string;
  name: string;
  status: {
    ancestors: Array<{
      ancestorRef: ParentRefStatus;
      controllerName: string;
      conditions: Condition[];
    }>;
  };
}

export type BackendTLSPolicyStatus = PolicyStatus<"BackendTLSPolicy">;
export type BackendTrafficPolicyStatus = PolicyStatus<"BackendTrafficPolicy">;
export type ClientTrafficPolicyStatus = PolicyStatus<"ClientTrafficPolicy">;
export type SecurityPolicyStatus = PolicyStatus<"SecurityPolicy">;

export type ObjectStatus =
  | GatewayClassStatus
  | GatewayStatus
  | HTTPRouteStatus
  | RautaPluginStatus
  | BackendTLSPolicyStatus
  | BackendTrafficPolicyStatus
  | ClientTrafficPolicyStatus
  | SecurityPolicyStatus
  | ListenerSetStatus;

export interface CompileOptions {
  /** GatewayClasses whose spec.controllerName equals this are ours; all others are ignored. */
  controllerName?: string;
  /** Generation stamped on the config (not part of its hash). */
  generation?: number;
  /** lastTransitionTime for conditions; compile() reads no clock, so callers pass one. */
  now?: string;
  /** Address a Gateway binds when it requests none (standalone: all local addresses). */
  defaultAddress?: string;
  /** Addresses the control plane assigned, by "<namespace>/<name>" of the Gateway. */
  gatewayAddresses?: Record<string, string>;
  /**
   * The control plane assigns addresses from a pool: a Gateway that requests none and got none
   * (the pool is exhausted) is not programmed (AddressNotAssigned) instead of binding
   * defaultAddress, where it would collide with every other such Gateway.
   */
  addressesRequired?: boolean;
  /**
   * Addresses the proxies can bind (the controller's pool): a Gateway requesting another one is
   * accepted but not programmed (AddressNotUsable). Absent: every requested address is bound.
   */
  usableAddresses?: readonly string[];
  /** Config schemas of the built-in plugins; default: the shipped ones (generated/rauta). */
  builtinPluginSchemas?: BuiltinSchemas;
  /**
   * The channel of the Gateway API CRDs installed (the HTTPRoute CRD's channel annotation);
   * experimental-only features are claimed on experimental. Default: standard.
   */
  gatewayApiChannel?: GatewayApiChannel;
}

export interface CompileResult {
  config: CompiledConfig;
  statuses: ObjectStatus[];
}

export const DEFAULT_CONTROLLER_NAME = "rauta.io/gateway-controller";
