import net from "node:net";

// A TCP port on 127.0.0.1 that was free a moment ago (listen on 0, read it, close).
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>(resolve => server.close(() => resolve()));
  return port;
}

/**
 * Resolves once 127.0.0.1:`port` accepts a connection. Rejects after `timeoutMs`, or as soon as
 * `gone()` says why the process that should listen there is not running any more.
 */
export async function portOpen(
  port: number,
  opts: { timeoutMs?: number; what?: string; gone?: () => string | null } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const what = opts.what ?? `port ${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = opts.gone?.() ?? null;
    if (why !== null) throw new Error(`${what} exited: ${why}`);
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen in ${timeoutMs / 1000} s`);
    await new Promise(r => setTimeout(r, 50));
  }
}
