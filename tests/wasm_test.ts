/**
 * The WASM backend against the PyTorch reference (every golden case, through the models with the
 * default threading and through a bare one-thread backend) and its contract: inputs untouched,
 * fresh outputs, clear errors, no use after `dispose`.
 */

import assert from "node:assert/strict";
import type { CellSpec, SequenceInput } from "../src/backends/backend.ts";
import { createWasmBackend, wasmBackend } from "../src/backends/wasm.ts";
import {
  defineGoldenForwardTests,
  forwardTolerance,
  goldenEntries,
  goldenForward,
  loadGoldenCase,
  maxAbsDiff,
} from "./_golden.ts";

// Through the public models (`backend: "wasm"`): the `doc` cases (B = 64) split over two Workers.
defineGoldenForwardTests("wasm");

// Bare backends that never start a Worker, as on runtimes without them: the default (relaxed SIMD
// here) and the plain SIMD build that runtimes without relaxed SIMD get.
for (const relaxedSimd of [true, false]) {
  const singleThread = createWasmBackend({ threads: 1, relaxedSimd });
  const label = relaxedSimd ? "threads: 1" : "threads: 1, plain SIMD";
  for (const entry of goldenEntries()) {
    Deno.test(`golden forward on wasm (${label}): ${entry.file}`, async () => {
      const golden = loadGoldenCase(entry);
      const result = await goldenForward(golden, singleThread);
      const worst = Math.max(
        maxAbsDiff(result.output, golden.tensors.outputs.data),
        maxAbsDiff(result.hidden, golden.tensors.hidden.data),
        maxAbsDiff(result.state, golden.tensors.state.data),
      );
      assert.ok(worst <= forwardTolerance(entry), `${entry.file}: max abs error ${worst}`);
    });
  }
}

Deno.test("wasm takes the plain build where relaxed SIMD does not validate", async () => {
  // A fresh Worker loads the modules anew, after `WebAssembly.validate` is made to reject
  // everything, as on a runtime without relaxed SIMD.
  const url = (path: string) => new URL(path, import.meta.url).href;
  const source = `
    WebAssembly.validate = () => false;
    const { instantiate } = await import(${
    JSON.stringify(url("../src/backends/wasm/bindings.ts"))
  });
    const { createWasmBackend } = await import(${JSON.stringify(url("../src/backends/wasm.ts"))});
    const { spec, input } = (await new Promise((resolve) => (self.onmessage = resolve))).data;
    const runner = await createWasmBackend({ threads: 1 }).compile(spec);
    self.postMessage({ flavor: instantiate().flavor, result: await runner.run(input) });
  `;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(blob, { type: "module" });
  try {
    const spec = smallSpec();
    const input = smallInput(spec, 3, 7);
    const reply = new Promise<MessageEvent>((resolve) => (worker.onmessage = resolve));
    worker.postMessage({ spec, input });
    const { flavor, result } = (await reply).data;
    assert.equal(flavor, "plain");
    const plain = await createWasmBackend({ threads: 1, relaxedSimd: false }).compile(spec);
    assert.deepEqual(result, await plain.run(input), "the plain build, bit for bit");
    plain.dispose();
  } finally {
    worker.terminate();
    URL.revokeObjectURL(blob);
  }
});

/** A small attention cell with distinct, non-trivial weights. */
function smallSpec(): CellSpec {
  const k = 3, I = 5, H = 7;
  const fill = (n: number, scale: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + scale) * scale);
  return {
    variant: { kind: "attention", k, maxPooling: true },
    inputSize: I,
    hiddenSize: H,
    params: {
      i2hWeight: fill(4 * k * H * I, 0.4),
      i2hBias: fill(4 * k * H, 0.1),
      h2hWeight: fill(4 * k * H * H, 0.3),
      h2hBias: fill(4 * k * H, 0.2),
      i2aWeight: fill(k * H * I, 0.5),
      i2aBias: fill(k * H, 0.3),
    },
  };
}

function smallInput(spec: CellSpec, batch: number, seqLen: number): SequenceInput {
  const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
  const fill = (n: number, phase: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.9 + phase));
  return {
    batch,
    seqLen,
    x: fill(batch * seqLen * I, 0),
    hidden: fill(batch * H, 1),
    state: fill(k * batch * H, 2),
  };
}

const copies = <T extends object>(value: T): T => structuredClone(value);

/** Counts the Workers started while `fn` runs (the backend starts them with `new Worker`). */
async function countWorkers(fn: () => Promise<void>): Promise<number> {
  const RealWorker = globalThis.Worker;
  let started = 0;
  globalThis.Worker = class extends RealWorker {
    constructor(...args: ConstructorParameters<typeof Worker>) {
      super(...args);
      started++;
    }
  };
  try {
    await fn();
  } finally {
    globalThis.Worker = RealWorker;
  }
  return started;
}

for (const threads of [1, 2]) {
  Deno.test(`wasm (threads: ${threads}) leaves inputs untouched and returns fresh arrays`, async () => {
    const spec = smallSpec();
    const specBefore = copies(spec);
    const runner = await createWasmBackend({ threads }).compile(spec);
    try {
      const input = smallInput(spec, 64, 500);
      const inputBefore = copies(input);
      const first = await runner.run(input);
      const second = await runner.run(input);
      assert.deepEqual(input, inputBefore);
      assert.deepEqual(spec, specBefore);
      assert.deepEqual(first, second, "same input, same output");
      for (const array of [first.output, first.hidden, first.state]) {
        assert.notEqual(array.buffer, input.x.buffer);
        assert.notEqual(array.buffer, input.hidden.buffer);
        assert.notEqual(array.buffer, input.state.buffer);
      }
      first.output.fill(NaN);
      assert.ok(second.output.every(Number.isFinite), "results do not share memory");
      // Weights changed after compile do not reach the compiled runner.
      spec.params.h2hWeight.fill(0);
      assert.deepEqual(await runner.run(input), second);
    } finally {
      runner.dispose();
    }
  });

  Deno.test(`wasm (threads: ${threads}) refuses to run after dispose`, async () => {
    const spec = smallSpec();
    const runner = await createWasmBackend({ threads }).compile(spec);
    await runner.run(smallInput(spec, 64, 500));
    runner.dispose();
    runner.dispose(); // idempotent
    await assert.rejects(runner.run(smallInput(spec, 1, 1)), {
      name: "Error",
      message: "this wasm runner was disposed; compile the cell again to run it",
    });
  });
}

Deno.test("wasm gives bit-identical results on one thread and on two", async () => {
  const spec = smallSpec();
  const input = smallInput(spec, 65, 500);
  const one = await createWasmBackend({ threads: 1 }).compile(spec);
  const two = await createWasmBackend({ threads: 2 }).compile(spec);
  try {
    let result = await one.run(input);
    assert.equal(
      await countWorkers(async () => {
        result = await two.run(input);
      }),
      2,
    );
    assert.deepEqual(result, await one.run(input));
  } finally {
    one.dispose();
    two.dispose();
  }
});

Deno.test("wasm keeps batch 1 in the calling thread", async () => {
  const spec = smallSpec();
  const runner = await createWasmBackend({ threads: 2 }).compile(spec);
  try {
    assert.equal(
      await countWorkers(async () => void await runner.run(smallInput(spec, 1, 5000))),
      0,
    );
  } finally {
    runner.dispose();
  }
});

Deno.test("wasm runs concurrent calls on one runner", async () => {
  const spec = smallSpec();
  const runner = await createWasmBackend({ threads: 2 }).compile(spec);
  try {
    const inputs = [smallInput(spec, 64, 500), smallInput(spec, 3, 5), smallInput(spec, 40, 800)];
    const together = await Promise.all(inputs.map((input) => runner.run(input)));
    for (const [i, input] of inputs.entries()) {
      assert.deepEqual(together[i], await runner.run(input));
    }
  } finally {
    runner.dispose();
  }
});

Deno.test("wasm rejects malformed specs and inputs with clear errors", async () => {
  const spec = smallSpec();
  await assert.rejects(
    wasmBackend.compile({ ...spec, params: { ...spec.params, i2hWeight: new Float32Array(3) } }),
    { name: "RangeError", message: "params.i2hWeight must hold (4kH, I) = 420 floats, got 3" },
  );
  await assert.rejects(
    wasmBackend.compile({ ...spec, params: { ...spec.params, i2aBias: null } }),
    { name: "TypeError", message: "params.i2aBias must be a Float32Array (kH), got null" },
  );
  await assert.rejects(wasmBackend.compile({ ...spec, hiddenSize: 0 }), {
    name: "RangeError",
    message: "hiddenSize must be a positive integer, got number 0",
  });
  await assert.rejects(
    wasmBackend.compile({ ...spec, variant: { kind: "lstm", k: 2, maxPooling: false } }),
    { name: "RangeError", message: 'an "lstm" cell has k = 1, got k = 2' },
  );
  const runner = await wasmBackend.compile(spec);
  try {
    const input = smallInput(spec, 2, 3);
    await assert.rejects(runner.run({ ...input, seqLen: 4 }), {
      name: "RangeError",
      message: "x must hold (batch, seqLen, inputSize) = 40 floats, got 30",
    });
    await assert.rejects(runner.run({ ...input, state: new Float32Array(14) }), {
      name: "RangeError",
      message: "state must hold (k, batch, hiddenSize) = 42 floats, got 14",
    });
    await assert.rejects(runner.run({ ...input, batch: 1.5 }), {
      name: "RangeError",
      message: "batch must be a positive integer, got number 1.5",
    });
  } finally {
    runner.dispose();
  }
  assert.throws(() => createWasmBackend({ threads: 0 }), {
    name: "RangeError",
    message: "threads must be a positive integer, got 0",
  });
});

Deno.test("wasm stops idle Workers so a process that forgets dispose() can exit", async () => {
  const spec = smallSpec();
  const runner = await createWasmBackend({ threads: 2 }).compile(spec);
  const started = await countWorkers(async () => {
    await runner.run(smallInput(spec, 64, 500));
  });
  assert.equal(started, 2);
  // The test sanitizer fails this test if a Worker or timer is still alive when it ends.
  await new Promise((resolve) => setTimeout(resolve, 1500));
});
