import assert from "node:assert/strict";
import { FIXTURE_SETS, fixtureDir, fixtureIndex, readFixture } from "./_testdata.ts";

for (const set of FIXTURE_SETS) {
  Deno.test(`tests/testdata/${set} holds its README, its index and every file the index lists`, () => {
    assert.ok(readFixture(set, "README.md").length > 0);
    const listed = fixtureIndex(set).map((entry) => entry.file);
    assert.ok(listed.length > 0, `tests/testdata/${set}/index.json lists no files`);
    for (const file of listed) assert.ok(readFixture(set, file).length > 0, file);
    const present = [...Deno.readDirSync(fixtureDir(set))].map((entry) => entry.name);
    const unlisted = present.filter((name) =>
      !["README.md", "index.json", ...listed].includes(name)
    );
    assert.deepEqual(unlisted, [], `files in tests/testdata/${set} that index.json does not list`);
  });
}
