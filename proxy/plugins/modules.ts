// Where plugin modules come from and how they become runnable: the bytes of a source (built-in,
// inline, a ConfigMap key, or an http(s) URL pinned by sha256), verified against the expected
// digest, sandboxed at load (instrument.ts: fuel metering and a memory cap, cached on disk by
// digest) and compiled once per (digest, memory cap) for the process. Every failure is a
// ModuleError with the reason RautaPlugin status reports.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import type { PluginSource } from "../config/schema.ts";
import { packagePath } from "../runtime/package-root.ts";
import { InstrumentError, instrumentCached } from "./instrument.ts";
import type { CompiledPlugin } from "./sandbox.ts";

export type ModuleErrorReason =
  | "InvalidSource"
  | "SourceNotFound"
  | "DigestMismatch"
  | "InvalidModule"
  | "MissingExport"
  | "LoadFailed";

export class ModuleError extends Error {
  readonly reason: ModuleErrorReason;
  constructor(reason: ModuleErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ModuleStoreOptions {
  /** instrumented modules and downloaded sources, by digest */
  cacheDir?: string;
  /** bytes of a ConfigMap key (cluster: the API; standalone: the YAML given) */
  readConfigMap?: (namespace: string, name: string, key: string) => Promise<Uint8Array | null>;
  /** where built-in modules live (default: plugins-sdk/builtins/dist) */
  builtinDir?: string;
  /** cap on a module's size, any source */
  maxModuleBytes?: number;
  fetchTimeoutMs?: number;
}

export const BUILTIN_DIR = packagePath("plugins-sdk/builtins/dist");

export function defaultCacheDir(): string {
  return path.join(
    process.env.RAUTA_CACHE_DIR ?? path.join(os.homedir(), ".cache", "rauta"),
    "plugins",
  );
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${crypto.createHash("sha256").update(bytes).digest("hex")}`;
}

const GZIP = [0x1f, 0x8b];

export class ModuleStore {
  private readonly opts: Required<Omit<ModuleStoreOptions, "readConfigMap">> &
    Pick<ModuleStoreOptions, "readConfigMap">;
  /** compiled modules by "<digest>/<pages>" (a promise, so concurrent loads share the work) */
  private readonly compiled = new Map<string, Promise<CompiledPlugin>>();

  constructor(opts: ModuleStoreOptions = {}) {
    this.opts = {
      cacheDir: opts.cacheDir ?? defaultCacheDir(),
      builtinDir: opts.builtinDir ?? BUILTIN_DIR,
      maxModuleBytes: opts.maxModuleBytes ?? 32 * 1024 * 1024,
      fetchTimeoutMs: opts.fetchTimeoutMs ?? 30_000,
      readConfigMap: opts.readConfigMap,
    };
  }

  /** The raw module bytes of a source (gunzipped when compressed), verified against `digest`. */
  async bytesOf(
    source: PluginSource,
    digest: string | undefined,
  ): Promise<{ bytes: Uint8Array; digest: string }> {
    let bytes = await this.fetchSource(source);
    if (bytes[0] === GZIP[0] && bytes[1] === GZIP[1]) {
      try {
        bytes = zlib.gunzipSync(bytes, { maxOutputLength: this.opts.maxModuleBytes });
      } catch (err) {
        throw new ModuleError(
          "InvalidSource",
          `the module is gzip data that does not decompress: ${(err as Error).message}`,
        );
      }
    }
    if (bytes.length > this.opts.maxModuleBytes)
      throw new ModuleError(
        "InvalidSource",
        `the module is ${bytes.length} bytes; the limit is ${this.opts.maxModuleBytes}`,
      );
    const actual = sha256(bytes);
    if (digest !== undefined && digest !== actual)
      throw new ModuleError(
        "DigestMismatch",
        `the module's digest is ${actual}, expected ${digest}`,
      );
    return { bytes, digest: actual };
  }

  private async fetchSource(source: PluginSource): Promise<Uint8Array> {
    if ("builtin" in source) {
      if (!/^[a-z0-9-]+$/.test(source.builtin))
        throw new ModuleError(
          "InvalidSource",
          `invalid built-in name ${JSON.stringify(source.builtin)}`,
        );
      const file = path.join(this.opts.builtinDir, `${source.builtin}.wasm`);
      try {
        return new Uint8Array(fs.readFileSync(file));
      } catch {
        throw new ModuleError(
          "SourceNotFound",
          `built-in plugin ${source.builtin} is not in this proxy (${file}; build it with node hack/plugins/build.ts)`,
        );
      }
    }
    if ("inline" in source) {
      const b = Buffer.from(source.inline, "base64");
      if (b.length === 0)
        throw new ModuleError("InvalidSource", "the inline module is empty or not base64");
      return new Uint8Array(b);
    }
    if ("configMap" in source) {
      const { namespace, name, key } = source.configMap;
      if (!this.opts.readConfigMap)
        throw new ModuleError(
          "SourceNotFound",
          `ConfigMap ${namespace}/${name} cannot be read by this proxy`,
        );
      const b = await this.opts.readConfigMap(namespace, name, key);
      if (b === null)
        throw new ModuleError("SourceNotFound", `ConfigMap ${namespace}/${name} has no key ${key}`);
      return b;
    }
    return this.fetchUrl(source.url.url, source.url.sha256);
  }

  // Downloaded once: cached by the pinned digest, so a restart or another worker never fetches again.
  private async fetchUrl(url: string, pinned: string): Promise<Uint8Array> {
    const cached = path.join(this.opts.cacheDir, "sources", `${pinned.replace(":", "-")}.wasm`);
    try {
      const b = new Uint8Array(fs.readFileSync(cached));
      if (sha256(b) === pinned) return b;
    } catch {
      // not cached yet
    }
    let res: Response;
    try {
      res = await fetch(url, {
        signal: AbortSignal.timeout(this.opts.fetchTimeoutMs),
        redirect: "follow",
      });
    } catch (err) {
      throw new ModuleError("SourceNotFound", `GET ${url}: ${(err as Error).message}`);
    }
    if (!res.ok) throw new ModuleError("SourceNotFound", `GET ${url}: HTTP ${res.status}`);
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > this.opts.maxModuleBytes)
      throw new ModuleError(
        "InvalidSource",
        `GET ${url}: ${declared} bytes exceeds the limit of ${this.opts.maxModuleBytes}`,
      );
    const b = new Uint8Array(await res.arrayBuffer());
    const actual = sha256(b);
    if (actual !== pinned)
      throw new ModuleError("DigestMismatch", `GET ${url}: digest ${actual}, expected ${pinned}`);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, b);
    fs.renameSync(tmp, cached);
    return b;
  }

  /** Bytes → sandboxed, compiled module (shared by every generation and plugin using it). */
  compile(bytes: Uint8Array, digest: string, memoryMiB: number): Promise<CompiledPlugin> {
    const pages = memoryMiB * 16;
    const key = `${digest}/${pages}`;
    let p = this.compiled.get(key);
    if (p === undefined) {
      p = this.compileNow(bytes, digest, pages);
      this.compiled.set(key, p);
      p.catch(() => this.compiled.delete(key));
    }
    return p;
  }

  private async compileNow(
    bytes: Uint8Array,
    digest: string,
    pages: number,
  ): Promise<CompiledPlugin> {
    let result;
    try {
      result = await instrumentCached(
        bytes,
        { maxMemoryPages: pages },
        path.join(this.opts.cacheDir, "instrumented"),
      );
    } catch (err) {
      if (err instanceof InstrumentError) {
        const reason = err.reason === "MissingExport" ? "MissingExport" : "InvalidModule";
        throw new ModuleError(reason, err.message);
      }
      throw new ModuleError("LoadFailed", (err as Error).message);
    }
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(result.bytes as Uint8Array<ArrayBuffer>);
    } catch (err) {
      throw new ModuleError(
        "InvalidModule",
        `the sandboxed module does not compile: ${(err as Error).message}`,
      );
    }
    return {
      module,
      // kept for isolation: a compiled module cannot be sent to another process
      bytes: result.bytes,
      digest,
      exports: new Set(result.exports),
      wasi: result.imports.some(i => i.module === "wasi_snapshot_preview1"),
      metered: true,
      maxMemoryBytes: result.memory.maxPages * 65536,
      blockInput: result.imports.some(
        i => i.module === "extism:host/env" && i.name === "input_offset",
      ),
    };
  }

  /** Forgets compiled modules no plugin uses any more. */
  retainOnly(keys: Set<string>): void {
    for (const k of this.compiled.keys()) if (!keys.has(k)) this.compiled.delete(k);
  }
}
