// The host's token buckets behind rate_take: the bucket arithmetic, and the bound on keys.
import { expect } from "chai";
import { RateLimitStore } from "../../../proxy/plugins/host-functions.ts";

describe("rate_take's token buckets", () => {
  it("allows a burst, then refuses with the seconds until the next token, then refills", () => {
    const s = new RateLimitStore();
    expect(s.take("c:1", 2, 3, 0)).to.equal(2);
    expect(s.take("c:1", 2, 3, 0)).to.equal(1);
    expect(s.take("c:1", 2, 3, 0)).to.equal(0);
    expect(s.take("c:1", 2, 3, 0)).to.equal(-0.5);
    expect(s.take("c:1", 2, 3, 500)).to.equal(0); // one token back after 1/rate s
    expect(s.take("c:2", 2, 3, 500)).to.equal(2); // keys are apart
    expect(s.take("c:1", 0, 3, 500)).to.equal(-1); // a rate that is no rate
  });

  it("holds at most maxKeys keys, and keeps a key in use while strangers flood in", () => {
    const s = new RateLimitStore(100);
    s.take("busy", 1, 5, 0); // 4 left
    for (let i = 0; i < 10_000; i++) {
      s.take(`stranger-${i}`, 1, 5, i);
      if (i % 40 === 0) s.take("busy", 1000, 5, i); // back to 5 (1 token/ms), takes one
      expect(s.size).to.be.at.most(100);
    }
    // still known: its bucket was taken from moments ago, not a fresh one
    expect(s.take("busy", 1e-9, 5, 10_000)).to.equal(3);
    // a key unused for more than maxKeys/2 new keys is forgotten: it starts full again
    s.take("idle", 1e-9, 5, 0);
    for (let i = 0; i < 200; i++) s.take(`later-${i}`, 1, 5, 0);
    expect(s.take("idle", 1e-9, 5, 0)).to.equal(4);
  });
});
