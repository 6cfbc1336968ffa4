// The native backend's selection and library checks, each in a fresh process: the library is
// opened once per process, and permissions are the process's.
import assert from "node:assert/strict";
import { isAvailable } from "./_backends.ts";

const PROGRAM = `
import { LSTM } from "${new URL("../mod.ts", import.meta.url).href}";
const results = [];
for (const backend of ["auto", "native"]) {
  try {
    using model = new LSTM(2, 3, { backend, seed: 1 });
    results.push(await model.resolveBackend());
  } catch (error) {
    results.push("error: " + error.message);
  }
}
console.log(JSON.stringify(results));
`;

/** `["auto" resolves to, "native" resolves to or its error]` in a process with `flags`. */
async function resolved(flags: string[], env: Record<string, string> = {}): Promise<string[]> {
  const program = await Deno.makeTempFile({ dir: "/tmp", suffix: ".ts" });
  try {
    await Deno.writeTextFile(program, PROGRAM);
    const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", ...flags, program],
      env: { ARRAYLSTM_BACKEND: "", ...env },
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    return JSON.parse(new TextDecoder().decode(stdout));
  } finally {
    await Deno.remove(program);
  }
}

const READ = ["--allow-read", "--allow-env"];

Deno.test({
  name: "without --allow-ffi, auto runs on WASM and an explicit native is a clear error",
  ignore: !isAvailable("native"),
  async fn() {
    const [auto, native] = await resolved(READ);
    assert.equal(auto, "wasm");
    assert.match(native, /backend "native" is not available: .*--allow-ffi/);
  },
});

Deno.test({
  name: "with --allow-ffi the package's pinned library is taken by auto and by name",
  ignore: !isAvailable("native"),
  async fn() {
    assert.deepEqual(await resolved([...READ, "--allow-ffi"]), ["native", "native"]);
  },
});

Deno.test({
  name: "a missing ARRAYLSTM_NATIVE_LIB: auto falls back to WASM, native names the problem",
  ignore: !isAvailable("native"),
  async fn() {
    const env = { ARRAYLSTM_NATIVE_LIB: "/nonexistent/libarraylstm.so" };
    const [auto, native] = await resolved([...READ, "--allow-ffi"], env);
    assert.equal(auto, "wasm");
    assert.match(native, /backend "native" is not available: .*\/nonexistent\/libarraylstm\.so/);
  },
});
