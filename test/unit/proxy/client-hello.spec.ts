// The ClientHello reader passthrough routes by: real hellos from Node's TLS client, split across
// reads and records, and malformed ones (truncated, no SNI, oversized, lengths that lie).
import { expect } from "chai";
import net from "node:net";
import tls from "node:tls";
import { MAX_CLIENT_HELLO, parseClientHello } from "../../../proxy/tls/client-hello.ts";

/** The first bytes a TLS client sends, captured by a server that never answers. */
async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>(resolve =>
    server.once("connection", s => {
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        if (parseClientHello(all).kind !== "incomplete") {
          resolve(all);
          s.destroy();
        }
      });
    }),
  );
  const client = tls.connect({ host: "127.0.0.1", port, ...options });
  client.on("error", () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

// Re-frames a hello's handshake bytes into records of at most `size` bytes each.
function rechunk(hello: Buffer, size: number): Buffer {
  const handshake = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += size) {
    const part = handshake.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe("proxy: TLS ClientHello reader", () => {
  let hello: Buffer;
  before(async () => {
    hello = await captureHello({ servername: "Db.Example.COM", ALPNProtocols: ["h2", "http/1.1"] });
  });

  it("reads the server name (lowercased) and ALPN of a real ClientHello", () => {
    expect(parseClientHello(hello)).to.deep.equal({
      kind: "hello",
      serverName: "db.example.com",
      alpn: ["h2", "http/1.1"],
    });
  });

  it("asks for more bytes at every cut of the hello, and reads it once complete", () => {
    for (let n = 0; n < hello.length; n++)
      expect(parseClientHello(hello.subarray(0, n)).kind, `first ${n} bytes`).to.equal(
        "incomplete",
      );
  });

  it("reads a hello split over several records", () => {
    const split = rechunk(hello, 100);
    const r = parseClientHello(split);
    expect(r).to.deep.include({ kind: "hello", serverName: "db.example.com" });
    for (let n = 0; n < split.length; n += 37)
      expect(parseClientHello(split.subarray(0, n)).kind).to.equal("incomplete");
  });

  it("gives no server name for a client that sends none", async () => {
    const bare = await captureHello({});
    expect(parseClientHello(bare)).to.deep.include({ kind: "hello", serverName: null });
  });

  it("refuses what is not a TLS handshake", () => {
    const r = parseClientHello(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(r.kind).to.equal("invalid");
    expect((r as { reason: string }).reason).to.match(/not a TLS handshake \(first byte 0x47\)/);
  });

  it("refuses a hello that declares more than the limit, as soon as it says so", () => {
    const head = Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0x02, 0x00, 0x00]);
    const r = parseClientHello(head);
    expect(r.kind).to.equal("invalid");
    expect((r as { reason: string }).reason).to.match(/too large/);
    expect(MAX_CLIENT_HELLO).to.be.lessThan(0x020000 + 4);
  });

  it("refuses lengths that point past the hello instead of reading out of bounds", () => {
    // every single-byte corruption of the lengths either still parses or is invalid: no throw
    for (let i = 0; i < hello.length; i++) {
      for (const v of [0x00, 0xff]) {
        const bad = Buffer.from(hello);
        bad[i] = v;
        expect(() => parseClientHello(bad), `byte ${i} = ${v}`).to.not.throw();
      }
    }
    const cut = Buffer.from(hello);
    // the handshake says it is 1 byte longer than the record carries, and no record follows
    cut.writeUIntBE(cut.readUIntBE(6, 3) - 40, 6, 3);
    expect(parseClientHello(cut).kind).to.equal("invalid");
  });

  it("refuses a server name that is not a hostname", () => {
    const i = hello.indexOf(Buffer.from("Db.Example.COM", "latin1"));
    const bad = Buffer.from(hello);
    bad.write("db.exa/ple.com", i, "latin1");
    const r = parseClientHello(bad);
    expect(r.kind).to.equal("invalid");
    expect((r as { reason: string }).reason).to.match(/not a hostname/);
  });
});
