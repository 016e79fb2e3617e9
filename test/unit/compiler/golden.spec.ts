import { expect } from "chai";
import { fixtureCases, runFixture } from "../../helpers/golden.ts";

describe("compiler golden fixtures (test/fixtures/compiler)", () => {
  for (const name of fixtureCases()) {
    it(name, () => {
      const { file, actual, expected } = runFixture(name);
      expect(
        expected,
        `${name}/${file} is missing: run UPDATE_GOLDEN=1 npx mocha, then review it`,
      ).to.not.equal(undefined);
      expect(actual).to.deep.equal(expected);
    });
  }
});
