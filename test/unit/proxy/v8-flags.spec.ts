// The serving processes' V8 heap settings: defaults, the RAUTA_V8_FLAGS override, and how they
// combine with the flags a process inherits.
import { expect } from "chai";
import {
  DEFAULT_PROXY_V8_FLAGS,
  hasV8Flags,
  proxyV8Flags,
  withV8Flags,
} from "../../../proxy/runtime/v8-flags.ts";

describe("proxy V8 flags", () => {
  it("defaults to the measured set and lets RAUTA_V8_FLAGS replace it (empty: V8's defaults)", () => {
    expect(proxyV8Flags({})).to.deep.equal([...DEFAULT_PROXY_V8_FLAGS]);
    expect(
      proxyV8Flags({ RAUTA_V8_FLAGS: " --max-semi-space-size=16  --trace-gc " }),
    ).to.deep.equal(["--max-semi-space-size=16", "--trace-gc"]);
    expect(proxyV8Flags({ RAUTA_V8_FLAGS: "" })).to.deep.equal([]);
  });

  it("replaces inherited settings of the same flags (incl. --no-/underscore spellings) and keeps the rest", () => {
    const inherited = [
      "--max_semi_space_size=2",
      "--memory-pool",
      "--enable-source-maps",
      "--heap-growing-percent=90",
    ];
    expect(withV8Flags(inherited, DEFAULT_PROXY_V8_FLAGS)).to.deep.equal([
      "--enable-source-maps",
      ...DEFAULT_PROXY_V8_FLAGS,
    ]);
    expect(withV8Flags(["--inspect"], [])).to.deep.equal(["--inspect"]);
  });

  it("knows whether a process already runs with them", () => {
    expect(hasV8Flags(["--x", ...DEFAULT_PROXY_V8_FLAGS], DEFAULT_PROXY_V8_FLAGS)).to.equal(true);
    expect(hasV8Flags(["--max-semi-space-size=8"], DEFAULT_PROXY_V8_FLAGS)).to.equal(false);
    expect(hasV8Flags([], [])).to.equal(true);
  });
});
