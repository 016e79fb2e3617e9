// The hot-path counters and histograms expose exactly what prom-client's would, and aggregate
// across workers the same way.
import { expect } from "chai";
import client from "prom-client";
import { HotCounter, HotHistogram } from "../../../proxy/observability/hot-metrics.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0.0005, 0.001, 0.002, 0.05, 0.5, 3, 0.01];

function pair() {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const hot = {
    c: new HotCounter({
      name: "x_total",
      help: "h",
      labelNames: ["route", "code"],
      registers: [ours],
    }),
    h: new HotHistogram({
      name: "x_seconds",
      help: "h",
      labelNames: ["route"],
      buckets: BUCKETS,
      registers: [ours],
    }),
  };
  const prom = {
    c: new client.Counter({
      name: "x_total",
      help: "h",
      labelNames: ["route", "code"],
      registers: [theirs],
    }),
    h: new client.Histogram({
      name: "x_seconds",
      help: "h",
      labelNames: ["route"],
      buckets: BUCKETS,
      registers: [theirs],
    }),
  };
  for (const [route, code] of [
    ["a", "2xx"],
    ["a", "5xx"],
    ["b", "2xx"],
    ["a", "2xx"],
  ] as const) {
    hot.c.labels(route, code).inc();
    prom.c.labels(route, code).inc();
  }
  for (const s of SAMPLES) {
    hot.h.labels("a").observe(s);
    prom.h.labels("a").observe(s);
    hot.h.labels("b").observe(s * 2);
    prom.h.labels("b").observe(s * 2);
  }
  return { ours, theirs };
}

describe("hot-path metrics", () => {
  it("expose the same text as prom-client's Counter and Histogram", async () => {
    const { ours, theirs } = pair();
    expect(await ours.metrics()).to.equal(await theirs.metrics());
  });

  it("aggregate across workers as prom-client's do", async () => {
    const a = pair();
    const b = pair();
    const ours = client.AggregatorRegistry.aggregate([
      await a.ours.getMetricsAsJSON(),
      await b.ours.getMetricsAsJSON(),
    ]);
    const theirs = client.AggregatorRegistry.aggregate([
      await a.theirs.getMetricsAsJSON(),
      await b.theirs.getMetricsAsJSON(),
    ]);
    expect(await ours.metrics()).to.equal(await theirs.metrics());
  });
});
