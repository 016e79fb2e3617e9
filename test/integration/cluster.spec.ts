// Proves the dev cluster (hack/cluster) with real objects against a real API server:
// scheduling, the process node, EndpointSlices, ClusterIP forwarding, pod replacement, CRD
// validation, volumes/env/service-account tokens, probes, and a clean teardown.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binaryPaths } from "../../hack/cluster/build.ts";
import { ClusterError, listNetns, up } from "../../hack/cluster/cluster.ts";
import { ports } from "../../hack/cluster/config.ts";
import { createServer } from "node:net";
import {
  type Cluster,
  ensureCluster,
  eventually,
  net,
  paths,
  stopCluster,
  uniqueNamespace,
  repoRoot,
} from "./helpers/cluster.ts";

interface Pod {
  metadata: { name: string; namespace: string; uid: string; deletionTimestamp?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      ready: boolean;
      restartCount: number;
      state: Record<string, { reason?: string; message?: string }>;
    }[];
  };
}
interface List<T> {
  items: T[];
}
interface EndpointSlice {
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[];
  ports?: { port?: number }[];
}

const isReady = (p: Pod) =>
  p.status.conditions?.some(c => c.type === "Ready" && c.status === "True") ?? false;

/** Waits for a pod to be Ready; on timeout the error says why not (its status and Warning events). */
async function readyPod(k: Cluster, name: string, ns: string, timeoutMs = 30_000): Promise<Pod> {
  try {
    return await eventually(`${name} Ready`, timeoutMs, () => {
      const p = k.getJson<Pod>(["pod", name, "-n", ns]);
      return isReady(p) ? p : undefined;
    });
  } catch (e) {
    const pod = k.kubectlResult(["get", "pod", name, "-n", ns, "-o", "jsonpath={.status}"]);
    const events = k.kubectlResult([
      "get",
      "events",
      "-n",
      ns,
      "--field-selector",
      `involvedObject.name=${name}`,
    ]);
    throw new Error(`${(e as Error).message}\nstatus: ${pod.stdout}\n${events.stdout}`, {
      cause: e,
    });
  }
}

const echoManifest = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        ports: [{name: http, containerPort: 3000}]
        resources: {requests: {cpu: 10m, memory: 16Mi}}
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
        livenessProbe: {tcpSocket: {port: 3000}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8080, targetPort: http}]
`;

async function httpJson(url: string): Promise<Record<string, unknown>> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  expect(r.status, url).to.equal(200);
  return (await r.json()) as Record<string, unknown>;
}

/**
 * A TCP port free on the host right now, below the kernel's ephemeral range (32768-60999): a
 * port inside it can be taken by an outgoing connection's local end before a pod binds it
 * (a hostNetwork echo pod crash-looped on EADDRINUSE that way).
 */
async function freeHostPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const free = await new Promise<boolean>(resolve => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

describe("dev cluster (hack/cluster)", function () {
  // A cold first run builds the binaries (minutes); once built, start-to-ready is seconds.
  this.timeout(15 * 60_000);
  let k: Cluster;
  const ns = uniqueNamespace("it-cluster");

  before(async () => {
    k = await ensureCluster();
    k.kubectl(["create", "namespace", ns]);
  });

  after(() => {
    k?.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
  });

  // Mocha runs a suite's own tests before its child suites, so every test sits in a child suite
  // to keep the order below (teardown last).
  describe("control plane", () => {
    it("has a Ready process node and established Gateway API CRDs", () => {
      const node = k.getJson<{ status: { conditions: { type: string; status: string }[] } }>([
        "node",
        "rauta-node",
      ]);
      expect(node.status.conditions.find(c => c.type === "Ready")?.status).to.equal("True");
      const crd = k.getJson<{ status: { conditions: { type: string; status: string }[] } }>([
        "crd",
        "httproutes.gateway.networking.k8s.io",
      ]);
      expect(crd.status.conditions.find(c => c.type === "Established")?.status).to.equal("True");
    });
  });

  describe("echo-basic Deployment + Service", function () {
    this.timeout(120_000);
    let pods: Pod[] = [];

    before(async () => {
      k.apply(echoManifest, ns);
      pods = await eventually("2 Ready echo pods", 60_000, () => {
        const ps = k
          .getJson<List<Pod>>(["pods", "-n", ns, "-l", "app=echo"])
          .items.filter(p => !p.metadata.deletionTimestamp);
        return ps.length === 2 && ps.every(isReady) ? ps : undefined;
      });
    });

    it("gives each pod its own IP in the pod CIDR", () => {
      const ips = pods.map(p => p.status.podIP);
      expect(new Set(ips).size).to.equal(2);
      for (const ip of ips) expect(ip).to.match(/^10\.244\.0\.\d+$/);
      expect(pods.every(p => p.status.phase === "Running")).to.equal(true);
    });

    it("has an EndpointSlice listing both pods as ready", async () => {
      const want = pods.map(p => p.status.podIP).sort();
      await eventually("EndpointSlice with both pods", 20_000, () => {
        const slices = k.getJson<List<EndpointSlice>>([
          "endpointslices",
          "-n",
          ns,
          "-l",
          "kubernetes.io/service-name=echo",
        ]).items;
        const ready = slices
          .flatMap(s => s.endpoints ?? [])
          .filter(e => e.conditions?.ready !== false)
          .flatMap(e => e.addresses)
          .sort();
        const port = slices[0]?.ports?.[0]?.port;
        return JSON.stringify(ready) === JSON.stringify(want) && port === 3000 ? true : undefined;
      });
    });

    it("answers HTTP on each pod IP with echo-basic's JSON naming that pod and namespace", async () => {
      for (const p of pods) {
        const body = await httpJson(`http://${p.status.podIP}:3000/hello`);
        expect(body.pod).to.equal(p.metadata.name);
        expect(body.namespace).to.equal(ns);
        expect(body.path).to.equal("/hello");
      }
    });

    it("forwards the Service's ClusterIP to the pods (host and pod-to-pod)", async () => {
      const svc = k.getJson<{ spec: { clusterIP: string } }>(["service", "echo", "-n", ns]);
      const names = new Set(pods.map(p => p.metadata.name));
      const body = await eventually("ClusterIP answering", 20_000, async () => {
        const b = await httpJson(`http://${svc.spec.clusterIP}:8080/`).catch(() => undefined);
        return b;
      });
      expect(names.has(String(body.pod))).to.equal(true);
    });

    it("serves container logs to kubectl logs (the node's kubelet API)", () => {
      const out = k.kubectl(["logs", "-n", ns, pods[0]!.metadata.name, "--tail=20"]);
      expect(out).to.include("Starting server, listening on port 3000 (http)");
    });

    it("replaces a deleted pod through its ReplicaSet", async () => {
      const victim = pods[0]!;
      k.kubectl(["delete", "pod", "-n", ns, victim.metadata.name, "--wait=true", "--timeout=60s"]);
      const now = await eventually("2 Ready pods again, without the deleted one", 60_000, () => {
        const ps = k
          .getJson<List<Pod>>(["pods", "-n", ns, "-l", "app=echo"])
          .items.filter(p => !p.metadata.deletionTimestamp);
        return ps.length === 2 &&
          ps.every(isReady) &&
          !ps.some(p => p.metadata.uid === victim.metadata.uid)
          ? ps
          : undefined;
      });
      const fresh = now.find(p => p.metadata.name !== pods[1]!.metadata.name)!;
      const body = await httpJson(`http://${fresh.status.podIP}:3000/`);
      expect(body.pod).to.equal(fresh.metadata.name);
    });
  });

  describe("API server and process node features", () => {
    it("rejects a Gateway API object with a schema error (CRD validation)", () => {
      const bad = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-route}
spec:
  rules:
  - matches:
    - path: {type: NotAType, value: /x}
`;
      const r = k.kubectlResult(["apply", "-n", ns, "-f", "-"], bad);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.match(
        /spec\.rules\[0\]\.matches\[0\]\.path\.type: Unsupported value: "NotAType"/,
      );
      const good = bad.replace("NotAType", "PathPrefix").replace("bad-route", "good-route");
      k.apply(good, ns);
    });

    it("reports an unknown image as ErrImagePull instead of hanging", async () => {
      k.apply(
        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"no-such-image"},"spec":{"containers":[{"name":"c","image":"example.invalid/nothing:1"}]}}`,
        ns,
      );
      const reason = await eventually("ErrImagePull", 20_000, () => {
        const p = k.getJson<Pod>(["pod", "no-such-image", "-n", ns]);
        return p.status.containerStatuses?.[0]?.state.waiting?.reason;
      });
      expect(reason).to.equal("ErrImagePull");
      // ... and says why where people look first (kubectl describe → events).
      await eventually("a Failed event", 10_000, () =>
        k
          .kubectl([
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            "involvedObject.name=no-such-image",
            "-o",
            "jsonpath={.items[*].message}",
          ])
          .includes("has no local command")
          ? true
          : undefined,
      );
    });

    it("runs a pod with configMap/secret/downwardAPI volumes, env valueFrom and an in-cluster service-account token", async () => {
      // The pod's script checks everything from the inside and exits 0 only if all holds; with
      // restartPolicy Never, phase Succeeded is the proof.
      const script = [
        'test "$(cat /etc/cfg/greeting)" = hello',
        'test "$SECRET" = s3cret',
        'test "$GREETING" = hello',
        'ip -4 -o addr show dev eth0 | grep -q " $MY_IP/"',
        'test "$(cat /etc/podinfo/name)" = vol-check',
        'test "$(cat /proc/sys/kernel/hostname)" = vol-check',
        'test "$(cat /etc/sec/password)" = s3cret',
        "test -d /scratch && touch /scratch/ok",
        "SA=/var/run/secrets/kubernetes.io/serviceaccount",
        'test "$(cat $SA/namespace)" = "$POD_NS"',
        'curl -sf --cacert $SA/ca.crt -H "Authorization: Bearer $(cat $SA/token)" https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api >/dev/null',
      ].join(" && ");
      k.apply(
        `
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: vol-check}
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: rauta.dev/exec:test
    command: [/bin/sh, -ec, '${script.replaceAll("'", "''")}']
    env:
    - {name: SECRET, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec, readOnly: true}
    - {name: info, mountPath: /etc/podinfo}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - {name: info, downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}
  - {name: scratch, emptyDir: {}}
`,
        ns,
      );
      const phase = await eventually("vol-check to finish", 30_000, () => {
        const p = k.getJson<Pod>(["pod", "vol-check", "-n", ns]);
        return p.status.phase === "Succeeded" || p.status.phase === "Failed"
          ? p.status.phase
          : undefined;
      });
      expect(phase, `see ${paths.logs}/pods/${ns}_vol-check/check.log`).to.equal("Succeeded");
    });

    it("runs the conformance suite's CoreDNS pod: a ConfigMap over /root hides none of its other volumes; the stand-in answers REFUSED", async () => {
      // the suite's base manifests mount a ConfigMap at /root, where the node keeps the pod
      // volumes (~/.cache/rauta/...): every mount source is opened before the first mount
      k.apply(
        `
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns}
data: {Corefile: ".:53 { forward . 8.8.8.8 }"}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns}
spec:
  containers:
  - name: coredns
    image: registry.k8s.io/coredns/coredns:v1.12.2
    args: [-conf, /root/Corefile]
    volumeMounts: [{mountPath: /root, name: conf}]
  volumes: [{name: conf, configMap: {name: coredns, defaultMode: 420}}]
`,
        ns,
      );
      const pod = await readyPod(k, "coredns", ns);
      const { createSocket } = await import("node:dgram");
      const sock = createSocket("udp4");
      sock.on("error", () => {}); // a query too early may come back as ICMP unreachable
      try {
        // id 0x1234, RD, one question: example.com A IN
        const q = Buffer.from("123401000001000000000000076578616d706c6503636f6d0000010001", "hex");
        // Ready (no probe) comes as the process starts, maybe before it listens: asked again
        // every 250 ms, as a DNS client retries over UDP (CI once sent its one query too early)
        const answer = await new Promise<Buffer>((resolve, reject) => {
          const ask = () => sock.send(q, 53, pod.status.podIP!);
          const again = setInterval(ask, 250);
          const t = setTimeout(() => {
            clearInterval(again);
            reject(new Error("no DNS answer in 10 s"));
          }, 10_000);
          sock.once("message", m => {
            clearTimeout(t);
            clearInterval(again);
            resolve(m);
          });
          ask();
        });
        expect(answer.readUInt16BE(0)).to.equal(0x1234);
        expect(answer[3]! & 0x0f, "RCODE").to.equal(5);
      } finally {
        sock.close();
        k.kubectl(["delete", "pod", "coredns", "-n", ns, "--wait=true"]);
      }
    });

    it("gives a pod the Gateway pool address it claims, reachable from the host", async () => {
      const addr = "10.244.0.250";
      k.apply(
        JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "gw-addr", annotations: { "rauta.dev/gateway-addresses": addr } },
          spec: {
            containers: [
              {
                name: "echo",
                image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
                env: [{ name: "POD_NAME", value: "gw-addr" }],
                readinessProbe: { tcpSocket: { port: 3000 }, periodSeconds: 1 },
              },
            ],
          },
        }),
        ns,
      );
      await readyPod(k, "gw-addr", ns);
      const body = await httpJson(`http://${addr}:3000/`);
      expect(body.pod).to.equal("gw-addr");
      k.kubectl(["delete", "pod", "gw-addr", "-n", ns, "--wait=true"]);
      const gone = await fetch(`http://${addr}:3000/`, { signal: AbortSignal.timeout(1500) }).then(
        () => false,
        () => true,
      );
      expect(gone, "the address is released with the pod").to.equal(true);
    });

    it("runs a hostNetwork pod in the host's network namespace with the node's IP", async () => {
      // the host's own ports: both must be free now (a random one collided with a connection)
      const port = await freeHostPort();
      const h2cPort = await freeHostPort();
      k.apply(
        JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "host-net" },
          spec: {
            hostNetwork: true,
            containers: [
              {
                name: "echo",
                image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
                env: [
                  { name: "HTTP_PORT", value: String(port) },
                  { name: "H2C_PORT", value: String(h2cPort) },
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                ],
                readinessProbe: { httpGet: { path: "/", port }, periodSeconds: 1 },
              },
            ],
          },
        }),
        ns,
      );
      const pod = await readyPod(k, "host-net", ns);
      expect(pod.status.podIP).to.equal(net.bridgeIP);
      // Reachable on loopback: it really is in the host's namespace.
      expect((await httpJson(`http://127.0.0.1:${port}/`)).pod).to.equal("host-net");
      k.kubectl(["delete", "pod", "host-net", "-n", ns, "--wait=true"]);
    });

    it("reports readiness honestly and drops unready pods from the EndpointSlice", async () => {
      const flag = join(tmpdir(), `rauta-ready-${ns}`);
      rmSync(flag, { force: true });
      k.apply(
        `
apiVersion: v1
kind: Pod
metadata: {name: flappy, labels: {app: flappy}}
spec:
  containers:
  - name: echo
    image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
    readinessProbe: {exec: {command: [/bin/test, -f, ${flag}]}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Service
metadata: {name: flappy}
spec:
  selector: {app: flappy}
  ports: [{port: 80, targetPort: 3000}]
`,
        ns,
      );
      const readyEndpoints = () =>
        k
          .getJson<List<EndpointSlice>>([
            "endpointslices",
            "-n",
            ns,
            "-l",
            "kubernetes.io/service-name=flappy",
          ])
          .items.flatMap(s => s.endpoints ?? [])
          .filter(e => e.conditions?.ready === true).length;
      await eventually("flappy Running but not Ready", 30_000, () => {
        const p = k.getJson<Pod>(["pod", "flappy", "-n", ns]);
        return p.status.phase === "Running" && p.status.containerStatuses?.[0]?.ready === false
          ? true
          : undefined;
      });
      expect(readyEndpoints()).to.equal(0);
      writeFileSync(flag, "");
      try {
        await eventually("flappy Ready and in the EndpointSlice", 30_000, () =>
          isReady(k.getJson<Pod>(["pod", "flappy", "-n", ns])) && readyEndpoints() === 1
            ? true
            : undefined,
        );
      } finally {
        rmSync(flag, { force: true });
      }
      await eventually("flappy unready again", 30_000, () =>
        !isReady(k.getJson<Pod>(["pod", "flappy", "-n", ns])) && readyEndpoints() === 0
          ? true
          : undefined,
      );
    });

    it("runs init containers to completion before the main container", async () => {
      k.apply(
        `
apiVersion: v1
kind: Pod
metadata: {name: with-init}
spec:
  restartPolicy: Never
  initContainers:
  - {name: prepare, image: "rauta.dev/exec:test", command: [/bin/sh, -c, "echo prepared > /work/state"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: main, image: "rauta.dev/exec:test", command: [/bin/sh, -c, 'test "$(cat /work/state)" = prepared'], volumeMounts: [{name: work, mountPath: /work}]}
  volumes: [{name: work, emptyDir: {}}]
`,
        ns,
      );
      const phase = await eventually("with-init to finish", 30_000, () => {
        const p = k.getJson<Pod>(["pod", "with-init", "-n", ns]);
        return p.status.phase === "Succeeded" || p.status.phase === "Failed"
          ? p.status.phase
          : undefined;
      });
      expect(phase).to.equal("Succeeded");
    });

    it("restarts a container whose liveness probe fails", async () => {
      k.apply(
        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"liveness"},"spec":{"terminationGracePeriodSeconds":1,
        "containers":[{"name":"c","image":"rauta.dev/exec:test","command":["/bin/sh","-c","exec sleep 600"],
        "livenessProbe":{"exec":{"command":["/bin/false"]},"periodSeconds":1,"failureThreshold":1}}]}}`,
        ns,
      );
      const restarts = await eventually("a liveness restart", 30_000, () => {
        const p = k.getJson<Pod>(["pod", "liveness", "-n", ns]);
        const n = p.status.containerStatuses?.[0]?.restartCount ?? 0;
        return n >= 1 ? n : undefined;
      });
      expect(restarts).to.be.at.least(1);
    });
  });

  describe("admission webhooks served by pods", function () {
    this.timeout(120_000);
    // The API server has no kube-proxy: with --enable-aggregator-routing it dials the Service's
    // endpoint IPs (the node's ClusterIP DNAT is a second path). Either way the request must reach
    // a pod that serves TLS with a certificate for <svc>.<ns>.svc.
    it("calls a ValidatingWebhook behind a Service and enforces its verdict", async () => {
      const dir = mkdtempSync(join(tmpdir(), "rauta-wh-"));
      const ssl = (...a: string[]) => {
        const r = spawnSync("openssl", a, { cwd: dir, encoding: "utf8" });
        if (r.status !== 0) throw new Error(r.stderr);
      };
      ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=wh-ca",
      );
      ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        `/CN=wh.${ns}.svc`,
      );
      writeFileSync(
        join(dir, "ext"),
        `subjectAltName=DNS:wh.${ns}.svc,DNS:wh.${ns}.svc.cluster.local\n`,
      );
      ssl(
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
      );
      k.kubectl([
        "create",
        "secret",
        "tls",
        "wh-tls",
        "-n",
        ns,
        `--cert=${join(dir, "tls.crt")}`,
        `--key=${join(dir, "tls.key")}`,
      ]);
      const server = `
        const fs = require("node:fs");
        require("node:https").createServer({ key: fs.readFileSync("/tls/tls.key"), cert: fs.readFileSync("/tls/tls.crt") }, (q, s) => {
          let b = ""; q.on("data", (d) => (b += d)); q.on("end", () => {
            const r = JSON.parse(b).request, deny = r.object.metadata.labels?.deny === "true";
            s.setHeader("content-type", "application/json");
            s.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
              response: { uid: r.uid, allowed: !deny, status: { code: 403, message: "denied by webhook pod " + process.env.POD_NAME } } }));
          });
        }).listen(8443);`;
      const nodeBin = realpathSync(join(repoRoot, "node_modules/.bin/node"));
      k.apply(
        JSON.stringify({
          apiVersion: "v1",
          kind: "List",
          items: [
            {
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "wh", labels: { app: "wh" } },
              spec: {
                containers: [
                  {
                    name: "wh",
                    image: "rauta.dev/exec:test",
                    command: [nodeBin, "-e", server],
                    env: [
                      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                    ],
                    ports: [{ containerPort: 8443 }],
                    readinessProbe: { tcpSocket: { port: 8443 }, periodSeconds: 1 },
                    volumeMounts: [{ name: "tls", mountPath: "/tls", readOnly: true }],
                  },
                ],
                volumes: [{ name: "tls", secret: { secretName: "wh-tls" } }],
              },
            },
            {
              apiVersion: "v1",
              kind: "Service",
              metadata: { name: "wh" },
              spec: { selector: { app: "wh" }, ports: [{ port: 443, targetPort: 8443 }] },
            },
          ],
        }),
        ns,
      );
      await readyPod(k, "wh", ns);
      const caBundle = readFileSync(join(dir, "ca.crt")).toString("base64");
      k.apply(
        JSON.stringify({
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: "ValidatingWebhookConfiguration",
          metadata: { name: `it-${ns}` },
          webhooks: [
            {
              name: "deny.rauta.dev",
              admissionReviewVersions: ["v1"],
              sideEffects: "None",
              failurePolicy: "Fail",
              timeoutSeconds: 5,
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
              rules: [
                {
                  apiGroups: [""],
                  apiVersions: ["v1"],
                  operations: ["CREATE"],
                  resources: ["configmaps"],
                },
              ],
              clientConfig: {
                caBundle,
                service: { name: "wh", namespace: ns, port: 443, path: "/validate" },
              },
            },
          ],
        }),
      );
      try {
        const labelled = JSON.stringify({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "denied", labels: { deny: "true" } },
        });
        // The API server picks up a new webhook configuration within about a second.
        const r = await eventually("the webhook to deny a labelled ConfigMap", 30_000, () => {
          const r = k.kubectlResult(["create", "-n", ns, "-f", "-"], labelled);
          return r.code === 0
            ? (k.kubectlResult(["delete", "configmap", "-n", ns, "denied"]), undefined)
            : r;
        });
        expect(r.stderr).to.include("denied by webhook pod wh");
        k.kubectl(["create", "configmap", "-n", ns, "allowed"]);

        // Prove the API server dials the endpoint, not the ClusterIP: remove every DNAT rule the
        // node programmed and the webhook still answers. (Any Service change restores the rules.)
        spawnSync("iptables", ["-w", "-t", "nat", "-F", "RAUTA-SERVICES"]);
        try {
          const again = k.kubectlResult(["create", "-n", ns, "-f", "-"], labelled);
          expect(again.stderr).to.include("denied by webhook pod wh");
        } finally {
          k.kubectl(["create", "service", "clusterip", "resync-dnat", "-n", ns, "--tcp=80"]);
        }
        await eventually("DNAT rules restored", 10_000, () =>
          spawnSync("iptables", ["-w", "-t", "nat", "-S", "RAUTA-SERVICES"], {
            encoding: "utf8",
          }).stdout.includes(`${ns}/wh`)
            ? true
            : undefined,
        );
      } finally {
        k.kubectlResult(["delete", "validatingwebhookconfiguration", `it-${ns}`]);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("caching and teardown", () => {
    it("reuses the cached binaries on a second run", () => {
      const r = spawnSync(process.execPath, ["hack/cluster/build.ts"], { encoding: "utf8" });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.not.match(/building /);
      const b = binaryPaths();
      for (const f of [b.kube, b.node, b.echoBasic]) expect(existsSync(f), f).to.equal(true);
    });

    it("tears down without leaving a process, network namespace or link behind", async () => {
      const pids = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "node"];
      const before = spawnSync("pgrep", ["-f", "echo-basic"], { encoding: "utf8" }).stdout.trim();
      expect(before, "echo pods should be running before teardown").to.not.equal("");
      await stopCluster();
      expect(
        spawnSync("pgrep", ["-f", "/\\.cache/rauta/(kube|node|echo-basic)"], {
          encoding: "utf8",
        }).stdout.trim(),
      ).to.equal("");
      expect(listNetns()).to.deep.equal([]);
      const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
      expect(links).to.not.include(net.bridge);
      expect(links).to.not.match(new RegExp(`\\d+: ${net.vethPrefix}`));
      for (const c of pids) expect(existsSync(`${paths.pids}/${c}.pid`), c).to.equal(false);
      // Later suites call ensureCluster() again; bring it back so they start from a warm state.
      await ensureCluster();
    });

    it("fails loudly, naming the component and its log, when one cannot start", async () => {
      await stopCluster();
      // Occupy etcd's client port so etcd cannot bind it.
      const blocker = createServer().listen(ports.etcdClient, "127.0.0.1");
      await new Promise(r => blocker.once("listening", r));
      try {
        const err = await up().then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect(err, "cluster:up should fail").to.be.instanceOf(ClusterError);
        expect(err!.message).to.match(/^etcd failed: /);
        expect(err!.message).to.include(`${paths.logs}/etcd.log`);
        expect(err!.message).to.match(/address already in use/);
      } finally {
        blocker.close();
      }
      await stopCluster();
      await ensureCluster();
    });
  });
});
