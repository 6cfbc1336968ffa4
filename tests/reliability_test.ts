/**
 * Regression tests of issue 11 (reliability and serving): no crash after a failed call, calls
 * planned to fit WASM memory, inputs read at call time, forgotten runners reclaimed, atomic hot
 * reloads, safetensors edge cases, clear messages, and a silent `"auto"` start.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  LSTM,
  randn,
  readSafetensors,
  saveSafetensors,
  type Tensor,
  zeros,
} from "../mod.ts";
import { describe } from "../src/errors.ts";
import { Reclaimer, type Registry, type Releasable } from "../src/reclaim.ts";
import { WasmKernel } from "../src/backends/wasm/kernel.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import {
  checkWasmWeights,
  planWasmCall,
  WASM_MEMORY_LIMITS,
} from "../src/backends/wasm/memory_plan.ts";
import { AVAILABLE_BACKENDS, BACKENDS, CPU_BACKENDS } from "./_backends.ts";
import { isClose, TOLERANCE } from "./_assert.ts";

const LSTM_1_64 = {
  variant: { kind: "lstm", k: 1, maxPooling: false },
  inputSize: 1,
  hiddenSize: 64,
} as const;

function lstmSpec(I: number, H: number) {
  const z = (n: number) => new Float32Array(n).fill(0.01);
  return {
    ...LSTM_1_64,
    inputSize: I,
    hiddenSize: H,
    params: {
      i2hWeight: z(4 * H * I),
      i2hBias: z(4 * H),
      h2hWeight: z(4 * H * H),
      h2hBias: z(4 * H),
      i2aWeight: null,
      i2aBias: null,
    },
  };
}

// Item 1: a call that trapped left the wasm cell borrowed, dispose() then threw inside a promise
// callback of the model, and the process died of an unhandled rejection.
Deno.test("a wasm kernel whose call trapped can be disposed, and the runner recovers", async () => {
  const spec = lstmSpec(1, 64);
  const kernel = new WasmKernel(spec);
  const [B, T] = [7, 1.2e6]; // its output alone needs more than the instance can address
  assert.throws(
    () =>
      kernel.run({
        batch: B,
        seqLen: T,
        x: new Float32Array(B * T),
        hidden: new Float32Array(B * 64),
        state: new Float32Array(B * 64),
      }),
    /the wasm kernel failed on batch 7 × seqLen 1200000/,
  );
  assert.equal(kernel.usable, false);
  kernel.dispose();
  kernel.dispose();
  const model = new LSTM(1, 64, { backend: "wasm", seed: 1 });
  const x = randn([2, 3, 1], { seed: 2 });
  const before = await model.forward(x);
  await assert.rejects(model.forward(zeros([1, 3, 2])));
  const again = new LSTM(1, 64, { backend: "wasm" });
  again.loadStateDict(model.stateDict());
  model.dispose();
  assert.deepEqual((await again.forward(x)).output, before.output);
  again.dispose();
});

// Item 5: batch 1e7 used to grow wasm memory to 24 GB.
Deno.test("wasm calls are planned: large batches split into chunks, impossible ones refused", () => {
  const plan = planWasmCall(LSTM_1_64, 10_000_000, 1);
  assert.ok(plan.rowsPerChunk < 10_000_000, `${plan.rowsPerChunk} rows per chunk`);
  assert.ok(plan.bytesPerChunk <= WASM_MEMORY_LIMITS.chunkBytes * 1.01);
  assert.equal(planWasmCall(LSTM_1_64, 64, 10).rowsPerChunk, 64);
  assert.throws(
    () => planWasmCall(LSTM_1_64, 1, 1e9),
    (error: Error) =>
      error instanceof RangeError &&
      /one sequence of seqLen 1000000000 needs/.test(error.message) &&
      /at most about \d+ steps fit per call/.test(error.message),
  );
});

Deno.test("a wasm call split into chunks gives the same numbers as one call", async () => {
  const spec = lstmSpec(3, 8);
  const B = 37, T = 5;
  const input = {
    batch: B,
    seqLen: T,
    x: randn([B, T, 3], { seed: 3 }).data,
    hidden: randn([B, 8], { seed: 4 }).data,
    state: randn([B, 8], { seed: 5 }).data,
  };
  using whole = await createWasmBackend({ threads: 1 }).compile(spec);
  const expected = await whole.run(input);
  for (const threads of [1, 2]) {
    using chunked = await createWasmBackend({
      threads,
      memory: { instanceBytes: 1 << 24, chunkBytes: 4096 },
    }).compile(spec);
    assert.deepEqual(await chunked.run(input), expected, `threads: ${threads}`);
  }
  using tiny = await createWasmBackend({
    threads: 1,
    memory: { instanceBytes: 1 << 20, chunkBytes: 4096 },
  }).compile(spec);
  await assert.rejects(
    tiny.run({
      ...input,
      batch: 1,
      seqLen: 100_000,
      x: new Float32Array(300_000),
      hidden: new Float32Array(8),
      state: new Float32Array(8),
    }),
    /split the sequence in time/,
  );
});

// Item 7: every backend read `x` and the initial state after an await.
for (const { label, backend } of BACKENDS) {
  Deno.test({
    name: `${label}: run reads its input before it returns`,
    ignore: backend === null,
    async fn() {
      const spec = lstmSpec(2, 4);
      using runner = await backend!.compile(spec);
      const input = () => ({
        batch: 3,
        seqLen: 4,
        x: randn([3, 4, 2], { seed: 6 }).data,
        hidden: randn([3, 4], { seed: 7 }).data,
        state: randn([3, 4], { seed: 8 }).data,
      });
      const expected = await runner.run(input());
      const reused = input();
      const pending = [runner.run(reused), runner.run(reused)];
      reused.x.fill(9);
      reused.hidden.fill(9);
      reused.state.fill(9);
      for (const result of await Promise.all(pending)) assert.deepEqual(result, expected);
    },
  });
}

for (const backend of AVAILABLE_BACKENDS) {
  Deno.test(`${backend}: forward reads x and init at call time, compiled or not, training too`, async () => {
    const x = () => randn([2, 3, 2], { seed: 9 });
    const init = () => ({
      hidden: randn([1, 2, 4], { seed: 10 }),
      state: randn([2, 2, 4], { seed: 11 }),
    });
    const reference = new ArrayLSTM(2, 4, 2, { backend: "js", seed: 1 });
    const expected = await reference.forward(x(), init());
    // A training forward once waited for its runner before copying its input, so a caller that
    // reused its arrays once it had the promise changed the step.
    for (const training of [false, true]) {
      const model = new ArrayLSTM(2, 4, 2, { backend, seed: 1 }).train(training);
      for (const compiled of [false, true]) {
        const [input, start] = [x(), init()];
        const pending = model.forward(input, start);
        input.data.fill(7);
        start.hidden.data.fill(7);
        start.state.data.fill(7);
        const { output } = await pending;
        for (let i = 0; i < output.data.length; i++) {
          assert.ok(
            Math.abs(output.data[i] - expected.output.data[i]) < 1e-5,
            `training: ${training}, compiled: ${compiled}`,
          );
        }
      }
      model.dispose();
    }
  });
}

// Item 8: forgotten models kept their wasm memory forever.
Deno.test("a Reclaimer frees what a collected owner held, and not what was disposed", () => {
  const registered = new Map<object, Releasable>();
  let cleanup: (held: Releasable) => void = () => {};
  const fake: Registry = {
    register: (owner, held) => void registered.set(owner, held),
    unregister: (token) => void registered.delete(token),
  };
  const reclaimer = new Reclaimer((callback) => {
    cleanup = callback;
    return fake;
  });
  let freed = 0;
  const [kept, forgotten] = [{}, {}];
  reclaimer.watch(kept, { dispose: () => freed++ });
  reclaimer.watch(forgotten, { dispose: () => freed++ });
  reclaimer.release(kept);
  assert.equal(registered.size, 1);
  cleanup(registered.get(forgotten)!); // what the registry does once `forgotten` is collected
  assert.equal(freed, 1);
  cleanup({
    dispose: () => {
      throw new Error("a failing release must not become an uncaught error");
    },
  });
});

Deno.test("runners and models that are never disposed are reclaimed after collection", async () => {
  const script = `
    import { defineBackend } from "${new URL("../src/contract/mod.ts", import.meta.url)}";
    import { LSTM, zeros } from "${new URL("../mod.ts", import.meta.url)}";
    import { instantiate } from "${new URL("../src/backends/wasm/bindings.ts", import.meta.url)}";
    let freed = 0;
    const backend = defineBackend("js", () => Promise.resolve({
      run: () => Promise.reject(new Error("unused")), dispose: () => { freed++; } }));
    const z = (n) => new Float32Array(n);
    const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 1,
      params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null } };
    for (let i = 0; i < 20; i++) await backend.compile(spec);
    const grow = async () => {
      for (let i = 0; i < 200; i++) await new LSTM(1, 256, { backend: "wasm", seed: i }).forward(zeros([1, 1, 1]));
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      return instantiate().memory.buffer.byteLength;
    };
    const first = await grow();
    const later = [await grow(), await grow(), await grow()];
    console.log(JSON.stringify({ freed, first, last: later[2] }));
  `;
  const { stdout, stderr, code } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const { freed, first, last } = JSON.parse(new TextDecoder().decode(stdout));
  assert.ok(freed > 0, "no forgotten runner was reclaimed");
  // 200 LSTM(1, 256) hold ~1.3 MB of packed weights each: 3 more rounds unreclaimed add ~800 MB.
  assert.ok(last - first < 256 * 2 ** 20, `wasm memory grew from ${first} to ${last} bytes`);
});

// Item 9: loadStateDict during forwards rejected all of them on wasm and webgpu.
for (const backend of AVAILABLE_BACKENDS) {
  Deno.test(`${backend}: hot reload while 40 forwards are in flight fails none`, async () => {
    // On wasm, a batch large enough to run on the Workers (which a dispose used to terminate).
    const [B, T, H] = backend === "wasm" ? [64, 50, 64] : [4, 5, 8];
    const model = new LSTM(3, H, { backend, seed: 1 });
    const next = new LSTM(3, H, { backend: "js", seed: 2 });
    const x = randn([B, T, 3], { seed: 12 });
    const oldResult = await new LSTM(3, H, { backend: "js", seed: 1 }).forward(x);
    const newResult = await next.forward(x);
    await model.forward(x); // compiled
    const before = Array.from({ length: 20 }, () => model.forward(x));
    model.loadStateDict(next.stateDict());
    const after = Array.from({ length: 20 }, () => model.forward(x));
    const close = (a: Tensor, b: Tensor) => isClose(a, b, TOLERANCE.backends);
    for (const result of await Promise.all(before)) {
      assert.ok(close(result.output, oldResult.output));
    }
    for (const result of await Promise.all(after)) {
      assert.ok(close(result.output, newResult.output));
    }
    // A reload while the first compile is still on its way.
    const fresh = new LSTM(3, H, { backend, seed: 1 });
    const early = fresh.forward(x);
    fresh.loadStateDict(next.stateDict());
    assert.ok(close((await early).output, oldResult.output));
    assert.ok(close((await fresh.forward(x)).output, newResult.output));
    fresh.dispose();
    model.dispose();
  });
}

// Items 10 and 11.
Deno.test("saveSafetensors keeps an Int32Array I32, writes a plain array F32, and checks shapes", () => {
  const record = {
    ints: { shape: [2], data: new Int32Array([3, -4]) },
    plain: { shape: [1, 3], data: [0.5, 1, 2] },
  } as unknown as Record<string, Tensor>;
  const { tensors } = readSafetensors(saveSafetensors(record));
  assert.deepEqual(tensors.ints.data, new Float32Array([3, -4]));
  assert.deepEqual(tensors.plain.data, new Float32Array([0.5, 1, 2]));
  const bad = (shape: unknown, data: unknown) => () =>
    saveSafetensors({ w: { shape, data } } as unknown as Record<string, Tensor>);
  assert.throws(bad([3], new Float32Array(2)), /record\["w"\] has 2 elements but its shape \[3\]/);
  assert.throws(
    bad([1.5, 2], new Float32Array(3)),
    /record\["w"\]\.shape\[0\] must be a non-negative integer, got 1\.5/,
  );
  assert.throws(
    bad([-1, -2], new Float32Array(2)),
    /shape\[0\] must be a non-negative integer, got -1/,
  );
  assert.throws(bad([2], ["a", "b"]), TypeError);
  assert.throws(bad([2], new BigInt64Array(2)), TypeError);
});

Deno.test("readSafetensors refuses a header that names a tensor twice", () => {
  const header = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"\\u0077":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a\\"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}';
  const text = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + text.length + 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  assert.throws(() => readSafetensors(bytes), /the header names "w" twice/);
});

// Item 12.
Deno.test("clear messages: huge hiddenSize, a bad x shape, fractional sizes", async () => {
  for (const backend of CPU_BACKENDS) {
    await assert.rejects(
      new LSTM(1, 1e6, { backend }).forward(zeros([1, 1, 1])),
      /the weights need 4000012000000 floats .* use a smaller hiddenSize/,
    );
    await assert.rejects(
      new LSTM(3, 4, { backend }).forward({ shape: [2, 1.5, 3], data: new Float32Array(9) }),
      /^RangeError: x\.shape\[1\] must be a non-negative integer, got 1\.5 in \[2, 1\.5, 3\]$/,
    );
  }
  assert.throws(
    () => checkWasmWeights({ ...LSTM_1_64, hiddenSize: 20_000 }),
    /hiddenSize 20000 needs .* GiB of WASM memory .* at most hiddenSize \d+ fits/,
  );
});

// Item 13.
Deno.test('"auto" writes nothing to stderr and starts without probing WebGPU on a GPU-less Linux', async () => {
  const script = `
    import { LSTM, zeros } from "${new URL("../mod.ts", import.meta.url)}";
    const model = new LSTM(8, 32);
    await model.forward(zeros([64, 10, 8]));
    console.log(await model.resolveBackend());
  `;
  for (const args of [["eval", script], ["eval", "--allow-read", "--allow-env", script]]) {
    const { stdout, stderr, code } = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
      env: { ARRAYLSTM_BACKEND: "" },
    }).output();
    assert.equal(code, 0);
    assert.equal(new TextDecoder().decode(stderr), "");
    assert.match(new TextDecoder().decode(stdout), /^(native|wasm|webgpu)\n$/);
  }
});

Deno.test("describe is bounded: 20,000-deep nesting and 10^6 items make a short message", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 20_000; i++) deep = [deep];
  assert.equal(describe(deep), "[[[[[…]]]]]");
  const long = describe(new Array(1e6).fill(1.5));
  assert.equal(long, "[1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, … (1000000 items)]");
  assert.match(describe(new Float32Array(1e6)), /^Float32Array \[0, 0, .*… \(1000000 items\)\]$/);
  assert.ok(describe("x".repeat(1e6)).length < 300);
  // Short shallow values print as before.
  assert.equal(describe([2, 3]), "[2, 3]");
  assert.equal(describe([[1, 2], [3]]), "[[1, 2], [3]]");
  assert.equal(describe(Float32Array.of(1, 2)), "1,2");
  assert.equal(describe("a"), '"a"');
  // An error built from such a value is the library's own, not a stack overflow.
  assert.throws(() => new LSTM(deep as number, 2), (error: Error) => {
    assert.ok(!(error instanceof RangeError && /call stack/.test(error.message)));
    return error.message.length < 400;
  });
});
