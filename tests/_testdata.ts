/**
 * Where the tests' reference data lives: `tests/testdata/<set>/`, byte-for-byte copies of the
 * sets in `shared/` beside the repository (re-synced by `deno task testdata:sync`). Tests read
 * only these copies, so a fresh clone runs every test; a missing file is an error naming the
 * file and the task that restores it, never a skipped test.
 *
 * @module
 */

/** The reference data sets, each a folder with a README.md, an index.json and its files. */
export const FIXTURE_SETS = ["golden", "golden_train", "golden_interop", "golden_lrp"] as const;

/** One of {@linkcode FIXTURE_SETS}. */
export type FixtureSet = typeof FIXTURE_SETS[number];

/** The folder of the copies: `tests/testdata/`. */
export const TESTDATA_DIR: URL = new URL("./testdata/", import.meta.url);

/** The folder of one set's copies: `tests/testdata/<set>/`. */
export function fixtureDir(set: FixtureSet): URL {
  return new URL(`${set}/`, TESTDATA_DIR);
}

/** The bytes of a set's file; a missing file says how to restore it. */
export function readFixture(set: FixtureSet, file: string): Uint8Array {
  const url = new URL(file, fixtureDir(set));
  try {
    return Deno.readFileSync(url);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      `test fixture tests/testdata/${set}/${file} is missing: run \`deno task testdata:sync\` ` +
        "(copies it from shared/ beside the repository) and commit the copy",
    );
  }
}

/** The cases a set's index.json lists (`golden` wraps them in `cases`; the others are a list). */
export function fixtureIndex(set: FixtureSet): { file: string }[] {
  const index = JSON.parse(new TextDecoder().decode(readFixture(set, "index.json")));
  return Array.isArray(index) ? index : index.cases;
}
