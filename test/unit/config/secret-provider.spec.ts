import { expect } from "chai";
import { certificateCopyName } from "../../../proxy/config/index.ts";
import { KubernetesSecretProvider } from "../../../proxy/kubernetes/secret-provider.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const copy = (source: string, cert: string) => ({
  metadata: {
    name: certificateCopyName({ namespace: source.split("/")[0]!, name: source.split("/")[1]! }),
    annotations: { "rauta.io/source": source },
  },
  data: { "tls.crt": b64(cert), "tls.key": b64("KEY") },
});

describe("KubernetesSecretProvider (certificate copies in the proxy namespace)", () => {
  it("resolves config secretRefs through the copies, follows rotation and deletion, and notifies", () => {
    const provider = new KubernetesSecretProvider("rauta-system");
    let changes = 0;
    provider.onChange(() => changes++);
    provider.apply(copy("web/site-cert", "CERT-1"), false);
    expect(provider.get({ namespace: "web", name: "site-cert" })).to.deep.equal({
      cert: "CERT-1",
      key: "KEY",
    });
    provider.apply(copy("web/site-cert", "CERT-2"), false);
    expect(provider.get({ namespace: "web", name: "site-cert" })?.cert).to.equal("CERT-2");
    provider.apply(copy("web/site-cert", "CERT-2"), true);
    expect(provider.get({ namespace: "web", name: "site-cert" })).to.equal(undefined);
    expect(changes).to.equal(3);
  });

  it("hands out a credentials copy's keys, decoded, the same object until the copy changes, and never a certificate's", () => {
    const provider = new KubernetesSecretProvider("rauta-system");
    const ref = { namespace: "web", name: "users" };
    const credentials = (users: string) => ({
      metadata: {
        name: certificateCopyName(ref),
        annotations: { "rauta.io/source": "web/users" },
      },
      type: "Opaque",
      data: { ".htpasswd": b64(users) },
    });
    provider.apply(credentials("alice:{SHA}x"), false);
    const first = provider.data(ref);
    expect(first).to.deep.equal({ ".htpasswd": "alice:{SHA}x" });
    expect(provider.data(ref)).to.equal(first);
    provider.apply(credentials("bob:{SHA}y"), false);
    expect(provider.data(ref)).to.deep.equal({ ".htpasswd": "bob:{SHA}y" });
    provider.apply(credentials("bob:{SHA}y"), true);
    expect(provider.data(ref)).to.equal(undefined);

    provider.apply({ ...copy("web/site-cert", "CERT"), type: "kubernetes.io/tls" }, false);
    expect(provider.get({ namespace: "web", name: "site-cert" })?.cert).to.equal("CERT");
    expect(provider.data({ namespace: "web", name: "site-cert" })).to.equal(undefined);
  });

  it("names copies deterministically and within Kubernetes name limits", () => {
    const name = certificateCopyName({ namespace: "a".repeat(63), name: "b".repeat(253) });
    expect(name).to.match(/^rauta-cert-[0-9a-f]{20}$/);
    expect(certificateCopyName({ namespace: "x", name: "y" })).to.not.equal(
      certificateCopyName({ namespace: "x", name: "z" }),
    );
  });
});
