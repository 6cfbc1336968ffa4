/**
 * The reference's gradients (tests/testdata/golden) through the public training API: the loss
 * `Σ outputs·R + Σ state·R2` built from functional ops, `await loss.backward()` filling the
 * parameters' `grad` and the `grad` of `x`, `h0`, `c0` wrapped in `requiresGrad`, on every
 * backend (js: the float64 oracle; wasm and webgpu: their fused training kernels).
 */

import { add, mul, requiresGrad, sum } from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { BACKEND_NAMES, isAvailable } from "./_backends.ts";
import { goldenEntries, goldenInit, goldenModel, loadGoldenCase } from "./_golden.ts";

for (const backend of BACKEND_NAMES) {
  for (const entry of goldenEntries().filter((entry) => entry.has_grads)) {
    Deno.test({
      name: `loss.backward() gives the reference's gradients on ${backend}: ${entry.file}`,
      ignore: !isAvailable(backend),
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
            parameter.grad!.data,
            t[`grad.${parameter.name}`].data,
            TOLERANCE.gradient,
            `grad.${parameter.name}`,
          );
        }
        assertClose(x.grad!.data, t["grad.x"].data, TOLERANCE.gradient, "grad.x");
        if (start !== undefined) {
          assertClose(start.hidden.grad!.data, t["grad.h0"].data, TOLERANCE.gradient, "grad.h0");
          assertClose(start.state.grad!.data, t["grad.c0"].data, TOLERANCE.gradient, "grad.c0");
        }
      },
    });
  }
}
