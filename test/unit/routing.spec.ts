// Routing cases (test/fixtures/routing/<case>/): Gateway API YAML in, requests → expected
// backend, status and headers out, through the real compiler and proxy over sockets.
import { expect } from "chai";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RoutingHarness, loadCases } from "../helpers/routing.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/routing");

describe("routing cases (YAML in, request → backend/status out)", function () {
  this.timeout(30_000);
  for (const c of loadCases(root)) {
    describe(`${c.name}: ${c.description}`, () => {
      let h: RoutingHarness;
      before(async () => {
        h = await RoutingHarness.start(c.dir);
      });
      after(async () => {
        await h.close();
      });
      c.steps.forEach((step, i) => {
        const r = step.request;
        it(
          step.name ??
            `${i + 1}. ${r.method ?? "GET"} ${r.path}${r.upgrade ? " (upgrade)" : ""} → ${step.expect.status}${step.expect.backend ? ` ${step.expect.backend}` : ""}`,
          async () => {
            const reply = await h.send(r);
            expect(
              RoutingHarness.check(reply, step.expect, r.upgrade ?? false, h.portOf(r)),
            ).to.deep.equal([]);
          },
        );
      });
    });
  }
});
