/**
 * Copies the reference data sets from `shared/` beside the repository into `tests/testdata/`,
 * byte for byte (`deno task testdata:sync`), or checks that the copies are still identical
 * (`deno task testdata:check`, run by CI). Without `../shared` the check says it skipped the
 * comparison and succeeds: the copies are the tests' data, `../shared` only their origin.
 *
 * @module
 */

import { FIXTURE_SETS, fixtureDir, type FixtureSet } from "../_testdata.ts";

/** The reference data beside the repository. */
const SHARED_DIR = new URL("../../../shared/", import.meta.url);

/** The files under `dir`, as paths relative to it, sorted; none when `dir` does not exist. */
function listFiles(dir: URL, prefix = ""): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(new URL(prefix, dir))];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return entries.flatMap((entry) =>
    entry.isDirectory ? listFiles(dir, `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]
  ).sort();
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** How a set's copies differ from `../shared/<set>`: one line per file. */
function differences(set: FixtureSet): string[] {
  const source = new URL(`${set}/`, SHARED_DIR);
  const copy = fixtureDir(set);
  const sourceFiles = listFiles(source);
  if (sourceFiles.length === 0) return [`../shared/${set} is missing or empty`];
  const copyFiles = listFiles(copy);
  return [
    ...sourceFiles.filter((file) => !copyFiles.includes(file)).map((file) => `missing: ${file}`),
    ...copyFiles.filter((file) => !sourceFiles.includes(file)).map((file) => `extra: ${file}`),
    ...sourceFiles.filter((file) =>
      copyFiles.includes(file) &&
      !equalBytes(Deno.readFileSync(new URL(file, source)), Deno.readFileSync(new URL(file, copy)))
    ).map((file) => `differs: ${file}`),
  ].map((line) => `tests/testdata/${set}: ${line}`);
}

/** Replaces a set's copies with the files of `../shared/<set>`; returns how many it copied. */
function sync(set: FixtureSet): number {
  const source = new URL(`${set}/`, SHARED_DIR);
  const files = listFiles(source);
  if (files.length === 0) throw new Error(`../shared/${set} is missing or empty: nothing to copy`);
  const copy = fixtureDir(set);
  if (exists(copy)) Deno.removeSync(copy, { recursive: true });
  for (const file of files) {
    const target = new URL(file, copy);
    Deno.mkdirSync(new URL(".", target), { recursive: true });
    // Read and write rather than copyFile: shared/ is read-only, the copies must stay writable.
    Deno.writeFileSync(target, Deno.readFileSync(new URL(file, source)));
  }
  return files.length;
}

if (import.meta.main) {
  const sharedExists = exists(SHARED_DIR);
  if (Deno.args[0] === "--check") {
    if (!sharedExists) {
      console.log("../shared not found: skipped comparing tests/testdata with it");
      Deno.exit(0);
    }
    const found = FIXTURE_SETS.flatMap(differences);
    if (found.length > 0) {
      console.error(
        `${
          found.join("\n")
        }\ntests/testdata differs from ../shared: run \`deno task testdata:sync\``,
      );
      Deno.exit(1);
    }
    console.log(`tests/testdata matches ../shared (${FIXTURE_SETS.join(", ")})`);
  } else {
    if (!sharedExists) throw new Error("../shared not found: nothing to copy into tests/testdata");
    for (const set of FIXTURE_SETS) console.log(`tests/testdata/${set}: ${sync(set)} files`);
  }
}
