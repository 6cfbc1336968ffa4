import assert from "node:assert/strict";
import { LSTM } from "../mod.ts";
import { selectBackend } from "../src/backends/select.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import { AVAILABLE_BACKENDS, isAvailable } from "./_backends.ts";

const VARIABLE = "ARRAYLSTM_BACKEND";

/** Runs `fn` with the override variable set to `value` (or unset), then restores it. */
async function withOverride(value: string | undefined, fn: () => Promise<void>): Promise<void> {
  const saved = Deno.env.get(VARIABLE);
  if (value === undefined) Deno.env.delete(VARIABLE);
  else Deno.env.set(VARIABLE, value);
  try {
    await fn();
  } finally {
    if (saved === undefined) Deno.env.delete(VARIABLE);
    else Deno.env.set(VARIABLE, saved);
  }
}

Deno.test('"auto" takes WebGPU only on a hardware adapter, else native (FFI granted), else WASM', async () => {
  const hardware = await requestWebGpuBackend({ hardwareOnly: true });
  const cpu = isAvailable("native") ? "native" : "wasm";
  await withOverride(undefined, async () => {
    using model = new LSTM(2, 3, { seed: 1 });
    assert.equal(await model.resolveBackend(), hardware === null ? cpu : "webgpu");
  });
});

Deno.test("explicit backends resolve to themselves", async () => {
  for (const name of AVAILABLE_BACKENDS) {
    using model = new LSTM(2, 3, { backend: name, seed: 1 });
    assert.equal(await model.resolveBackend(), name);
  }
});

Deno.test(`${VARIABLE} overrides "auto" but not an explicit backend`, async () => {
  await withOverride("js", async () => {
    assert.equal((await selectBackend("auto")).name, "js");
    assert.equal((await selectBackend("wasm")).name, "wasm");
  });
});

Deno.test(`an invalid ${VARIABLE} is a TypeError naming the variable`, async () => {
  await withOverride("cuda", async () => {
    await assert.rejects(() => selectBackend("auto"), {
      name: "TypeError",
      message: /the environment variable ARRAYLSTM_BACKEND must be one of .*, got "cuda"/,
    });
  });
});
