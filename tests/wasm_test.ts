/**
 * What only the WASM backend has: the plain SIMD fallback where relaxed SIMD does not validate,
 * splitting batches over Workers (bit-identical to one thread), and stopping idle Workers. The
 * contract every backend meets is tested in `backend_contract_test.ts`.
 */

import assert from "node:assert/strict";
import type { CellSpec } from "../src/contract/mod.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import { abortSharing, SharedUnits, sharedUnitsBuffer } from "../src/backends/wasm/shared_units.ts";
import { fixedCell, fixedInput } from "./_fixed_cells.ts";

Deno.test("wasm takes the plain build where relaxed SIMD does not validate", async () => {
  // A fresh Worker loads the modules anew, after `WebAssembly.validate` is made to reject
  // everything, as on a runtime without relaxed SIMD.
  const url = (path: string) => new URL(path, import.meta.url).href;
  // The listener comes first: a message that arrives while the imports load must not be lost.
  const source = `
    const message = new Promise((resolve) => (self.onmessage = resolve));
    WebAssembly.validate = () => false;
    const { instantiate } = await import(${
    JSON.stringify(url("../src/backends/wasm/bindings.ts"))
  });
    const { createWasmBackend } = await import(${
    JSON.stringify(url("../src/backends/wasm/mod.ts"))
  });
    const { spec, input } = (await message).data;
    const runner = await createWasmBackend({ threads: 1 }).compile(spec);
    self.postMessage({ flavor: instantiate().flavor, result: await runner.run(input) });
  `;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(blob, { type: "module" });
  try {
    const spec = smallSpec();
    const input = fixedInput(spec, 3, 7);
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
  return fixedCell("attention", 3, 5, 7, true);
}

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

/** Counts the `SharedArrayBuffer`s made while `fn` runs: one per call split by hidden units. */
async function countSharedBuffers(fn: () => Promise<void>): Promise<number> {
  const RealBuffer = globalThis.SharedArrayBuffer;
  let made = 0;
  globalThis.SharedArrayBuffer = class extends RealBuffer {
    constructor(byteLength: number) {
      super(byteLength);
      made++;
    }
  } as SharedArrayBufferConstructor;
  try {
    await fn();
  } finally {
    globalThis.SharedArrayBuffer = RealBuffer;
  }
  return made;
}

for (const threads of [2, 3]) {
  Deno.test(`wasm gives bit-identical results on one thread and on ${threads}`, async () => {
    const spec = smallSpec();
    // Enough work for three parts; the first worker's result is the whole batch the others'
    // rows are copied into.
    const input = fixedInput(spec, 65, 800);
    const one = await createWasmBackend({ threads: 1 }).compile(spec);
    const many = await createWasmBackend({ threads }).compile(spec);
    try {
      const expected = await one.run(input);
      // The runner's first call runs in this thread while the workers start; the next one splits.
      let cold = expected, split = expected;
      assert.equal(await countWorkers(async () => void (cold = await many.run(input))), 0);
      assert.equal(await countWorkers(async () => void (split = await many.run(input))), threads);
      assert.deepEqual(cold, expected);
      assert.deepEqual(split, expected);
    } finally {
      one.dispose();
      many.dispose();
    }
  });
}

for (
  const [kind, k] of [["lstm", 1], ["array", 2], ["attention", 2], ["stochastic", 2]] as const
) {
  Deno.test(`wasm ${kind}: a small batch shared by hidden units gives one thread's results`, async () => {
    // 190 units: 48 blocks of four, the last one half padding; ≥ 2e5 FLOPs per step and
    // ≥ 5e7 per call, so a batch too small to split by rows is split by hidden units.
    const spec = fixedCell(kind, k, 16, 190, kind === "attention");
    const one = await createWasmBackend({ threads: 1 }).compile(spec);
    const two = await createWasmBackend({ threads: 2 }).compile(spec);
    try {
      // The first call runs in this thread and starts both workers after its result.
      const first = fixedInput(spec, 1, 170);
      assert.equal(
        await countSharedBuffers(async () => {
          const started = await countWorkers(async () => {
            assert.deepEqual(await two.run(first), await one.run(first));
            await new Promise((resolve) => setTimeout(resolve, 0));
          });
          assert.equal(started, 2);
        }),
        0,
      );
      for (const batch of [1, 3]) {
        const input = fixedInput(spec, batch, 170);
        let shared = await one.run(input);
        let buffers = 0;
        const workers = await countWorkers(async () => {
          buffers = await countSharedBuffers(async () => void (shared = await two.run(input)));
        });
        // One buffer per call, on the workers already started.
        assert.deepEqual([buffers, workers], [1, 0]);
        assert.deepEqual(shared, await one.run(input), `batch ${batch}`);
      }
      // A batch split by rows takes both.
      const rows = fixedInput(spec, 16, 170);
      let split = await one.run(rows);
      assert.equal(
        await countSharedBuffers(async () => void (split = await two.run(rows))),
        0,
      );
      assert.deepEqual(split, await one.run(rows));
    } finally {
      one.dispose();
      two.dispose();
    }
  });
}

Deno.test("a part sharing hidden units throws when another part failed, instead of waiting", () => {
  const buffer = sharedUnitsBuffer(1, 16, 2);
  abortSharing(buffer, 2);
  const units = new SharedUnits(buffer, 1, 16, 0, 2);
  assert.deepEqual(units.blocks, [0, 2]);
  assert.throws(() => units.exchange(0, new Float32Array(16), 16), {
    message: "a thread sharing this call's hidden units failed; see its error",
  });
});

Deno.test("wasm keeps a small batch-1 call in the calling thread", async () => {
  const spec = smallSpec();
  const runner = await createWasmBackend({ threads: 2 }).compile(spec);
  try {
    assert.equal(
      await countWorkers(async () => void await runner.run(fixedInput(spec, 1, 5000))),
      0,
    );
  } finally {
    runner.dispose();
  }
});

Deno.test("createWasmBackend rejects a thread count that is not a positive integer", () => {
  assert.throws(() => createWasmBackend({ threads: 0 }), {
    name: "RangeError",
    message: "threads must be a positive integer, got 0",
  });
});

Deno.test("wasm stops idle Workers so a process that forgets dispose() can exit", async () => {
  const spec = smallSpec();
  const runner = await createWasmBackend({ threads: 2 }).compile(spec);
  const started = await countWorkers(async () => {
    await runner.run(fixedInput(spec, 64, 500)); // the first call: in this thread
    await runner.run(fixedInput(spec, 64, 500));
  });
  assert.equal(started, 2);
  // The test sanitizer fails this test if a Worker or timer is still alive when it ends.
  await new Promise((resolve) => setTimeout(resolve, 1500));
});
