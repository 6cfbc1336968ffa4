// Simulates a machine without a WebGPU adapter. The stub is installed before anything in this
// module asks for an adapter: the process-wide adapter is requested once and then kept.
import assert from "node:assert/strict";
import { LSTM } from "../mod.ts";
// Not ./_backends.ts: it asks for an adapter as it loads, before the stub below.
import { nativeLibraryAvailable } from "../src/backends/native/mod.ts";

if (typeof GPU !== "undefined") GPU.prototype.requestAdapter = () => Promise.resolve(null);

Deno.test('backend "webgpu" without an adapter is a clear error, not a fallback', async () => {
  using model = new LSTM(2, 3, { backend: "webgpu", seed: 1 });
  await assert.rejects(() => model.forward({ shape: [1, 1, 2], data: new Float32Array(2) }), {
    name: "Error",
    message: /backend "webgpu" is not available: navigator.gpu found no adapter/,
  });
});

Deno.test('"auto" without an adapter runs on native where FFI is granted, else WASM', async () => {
  const saved = Deno.env.get("ARRAYLSTM_BACKEND");
  Deno.env.delete("ARRAYLSTM_BACKEND");
  try {
    using model = new LSTM(2, 3, { seed: 1 });
    assert.equal(await model.resolveBackend(), await nativeLibraryAvailable() ? "native" : "wasm");
  } finally {
    if (saved !== undefined) Deno.env.set("ARRAYLSTM_BACKEND", saved);
  }
});
