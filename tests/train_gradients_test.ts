/**
 * The reference's gradients (tests/testdata/golden) through the public training API: the loss
 * `Σ outputs·R + Σ state·R2` built from functional ops, `await loss.backward()` filling the
 * parameters' `grad` and the `grad` of `x`, `h0`, `c0` wrapped in `requiresGrad`, on every
 * backend (js: the float64 oracle; wasm and webgpu: their fused training kernels).
 */

import assert from "node:assert/strict";
import { add, mul, requiresGrad, sum } from "../mod.ts";
import type { BackendName } from "../src/contract/mod.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import { goldenEntries, goldenInit, goldenModel, loadGoldenCase } from "./_golden.ts";

/** |actual − expected| ≤ 1e-3 of the tensor's largest expected entry (float32 forward). */
function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  assert.equal(actual.length, expected.length, `${name}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    assert.ok(
      error <= 1e-3 * scale,
      `${name}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${error})`,
    );
  }
}

const noAdapter = await requestWebGpuBackend() === null;
const backends: BackendName[] = ["js", "wasm", "webgpu"];
for (const backend of backends) {
  for (const entry of goldenEntries().filter((entry) => entry.has_grads)) {
    Deno.test({
      name: `loss.backward() gives the reference's gradients on ${backend}: ${entry.file}`,
      ignore: backend === "webgpu" && noAdapter,
      async fn() {
        const golden = loadGoldenCase(entry);
        const t = golden.tensors;
        using model = goldenModel(golden, backend);
        model.train();
        const x = requiresGrad(t.x);
        const init = goldenInit(golden);
        const start = init &&
          { hidden: requiresGrad(init.hidden), state: requiresGrad(init.state) };
        const { output, state } = await model.forward(x, start);
        const loss = add(sum(mul(output, t.R)), sum(mul(state, t.R2)));
        await loss.backward();
        await model.sync(); // webgpu keeps the gradients on the device
        for (const parameter of model.parameters()) {
          assertClose(
            `grad.${parameter.name}`,
            parameter.grad!.data,
            t[`grad.${parameter.name}`].data,
          );
        }
        assertClose("grad.x", x.grad!.data, t["grad.x"].data);
        if (start !== undefined) {
          assertClose("grad.h0", start.hidden.grad!.data, t["grad.h0"].data);
          assertClose("grad.c0", start.state.grad!.data, t["grad.c0"].data);
        }
      },
    });
  }
}
