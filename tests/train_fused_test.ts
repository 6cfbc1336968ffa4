/**
 * Training through the public API runs on the fused kernels of the wasm and webgpu backends, not
 * on the float64 oracle: every recorded forward and every backward goes through the backend's
 * trainer (counted on its class), and the gradients agree with the js backend (the oracle).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Adam, ArrayLSTM, Linear, oneHot } from "../mod.ts";
import type { BackendName } from "../src/contract/mod.ts";
import { WasmTrainingKernel } from "../src/backends/wasm/train_kernel.ts";
import { WebGpuTrainer } from "../src/backends/webgpu/trainer.ts";
import { classifierLoss } from "./_classifier.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { hasWebGpu } from "./_backends.ts";

/** Counts the calls of `prototype[name]` while `fn` runs. */
async function counting<T extends object>(
  prototype: T,
  names: (keyof T & string)[],
  fn: () => Promise<void>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const originals = names.map((name) => [name, prototype[name]] as const);
  for (const [name, original] of originals) {
    counts[name] = 0;
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value(this: unknown, ...args: unknown[]) {
        counts[name]++;
        return (original as (...args: unknown[]) => unknown).apply(this, args);
      },
    });
  }
  try {
    await fn();
  } finally {
    for (const [name, original] of originals) {
      Object.defineProperty(prototype, name, {
        configurable: true,
        writable: true,
        value: original,
      });
    }
  }
  return counts;
}

/** Two training steps of a small ArrayLSTM with a head; returns the first step's gradients. */
async function trainTwoSteps(backend: BackendName): Promise<Float32Array[]> {
  using lstm = new ArrayLSTM(4, 6, 2, { backend, seed: 3 }).train();
  const linear = new Linear(6, 3, { seed: 4 }).train();
  const params = [...lstm.parameters(), ...linear.parameters()];
  using opt = new Adam(params, { lr: 1e-2 });
  const x = oneHot([[0, 1, 2], [3, 2, 1]], 4);
  let first: Float32Array[] = [];
  for (let step = 0; step < 2; step++) {
    opt.zeroGrad();
    const loss = await classifierLoss(lstm, linear, x, [1, 2]);
    await loss.backward();
    if (step === 0) {
      await opt.sync(); // webgpu keeps the gradients on the device
      first = lstm.parameters().map((p) => p.grad!.data.slice());
    }
    opt.step();
  }
  return first;
}

const oracle = await trainTwoSteps("js");

function assertSameGradients(actual: Float32Array[]): void {
  actual.forEach((grad, i) => assertClose(grad, oracle[i], TOLERANCE.backends, `grad ${i}`));
}

Deno.test("wasm: training runs the fused Trainer for every forward and backward", async () => {
  let grads: Float32Array[] = [];
  const counts = await counting(WasmTrainingKernel.prototype, ["forward", "backward"], async () => {
    grads = await trainTwoSteps("wasm");
  });
  assert.deepEqual(counts, { forward: 2, backward: 2 });
  assertSameGradients(grads);
});

Deno.test({
  name: "webgpu: training runs WebGpuTrainer for every forward and backward",
  ignore: !hasWebGpu,
  async fn() {
    let grads: Float32Array[] = [];
    const counts = await counting(WebGpuTrainer.prototype, ["forward", "backward"], async () => {
      grads = await trainTwoSteps("webgpu");
    });
    assert.deepEqual(counts, { forward: 2, backward: 2 });
    assertSameGradients(grads);
  },
});
