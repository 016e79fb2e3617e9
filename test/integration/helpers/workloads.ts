// Workloads and probes shared by the cluster suites and the cluster benchmarks.
import http from "node:http";
export { freePort } from "../../helpers/net.ts";

// A Deployment of the Gateway API echo-basic backend (its JSON names pod and namespace) and a
// Service "<name>" on port 8080.
export function echoApp(name: string, replicas = 1): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        ports: [{name: http, containerPort: 3000}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 8080, targetPort: http}]
`;
}

// The same backend serving its gRPC echo service (GRPC_ECHO_SERVER, h2c on 3000), as the
// conformance suite's grpc-infra-backend, and a Service "<name>" on port 8080.
export function grpcEchoApp(name: string): string {
  return echoApp(name)
    .replace(
      "        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}",
      '        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n        - {name: GRPC_ECHO_SERVER, value: "1"}',
    )
    .replace("        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}\n", "")
    .replace(
      "ports: [{name: http, port: 8080, targetPort: http}]",
      "ports: [{name: grpc, port: 8080, targetPort: http, appProtocol: kubernetes.io/h2c}]",
    );
}

export interface HttpResult {
  /** 0: no response (connection error, timeout, or the body was cut off) */
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** why status is 0 */
  error?: string;
}

// GET with an explicit Host header (and any others); a failure or timeout resolves to status 0
// (never hangs: destroy() emits no error, so "close" resolves too).
export function httpGet(
  address: string,
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise(resolve => {
    let responded = false;
    const failed = (error: string) => resolve({ status: 0, body: "", headers: {}, error });
    const req = http.request(
      { host: address, port, path, headers: { ...headers, host }, agent: false, timeout: 3000 },
      res => {
        responded = true;
        let body = "";
        res.on("data", chunk => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        // After "end" this is a no-op; before it, the body was cut off.
        res.on("close", () => failed("response body cut off"));
      },
    );
    req.on("timeout", () => {
      failed("timed out after 3 s");
      req.destroy();
    });
    req.on("error", error => failed(error.message));
    req.on("close", () => {
      if (!responded) failed("connection closed before a response");
    });
    req.end();
  });
}
