import assert from "node:assert/strict";

const BENCH = new URL("../bench/", import.meta.url);

/** Runs a bench script with `args` in a new Deno process; its exit code and output. */
async function bench(script: string, args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", new URL(script, BENCH).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

for (const script of ["compare.ts", "first_forward.ts", "memory.ts"]) {
  Deno.test(`bench/${script} --help prints its usage and exits 0`, async () => {
    const { code, stdout } = await bench(script, ["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`bench/${script.replace(".", "\\.")}`));
  });

  Deno.test(`bench/${script} names an unknown option, shows the usage and exits 2`, async () => {
    const { code, stderr } = await bench(script, ["--bogus"]);
    assert.equal(code, 2);
    assert.match(stderr, /Unknown option '--bogus'/);
    assert.match(stderr, new RegExp(`deno run .*bench/${script.replace(".", "\\.")}`));
    assert.doesNotMatch(stderr, /at \w+ \(/); // no stack trace
  });
}
