/**
 * The WebGPU backend at the edges: batches split to fit a small binding limit, lost devices,
 * disposal, adapter detection. Skipped (with the reason printed) only without any adapter.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { CellSpec, SequenceInput } from "../src/contract/mod.ts";
import { jsBackend } from "../src/backends/js/mod.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import {
  acquireGpuContext,
  isSoftwareAdapter,
  requestGpuAdapter,
} from "../src/backends/webgpu/device.ts";
import { planChunks } from "../src/backends/webgpu/plan.ts";
import { Random } from "../src/random.ts";
import { absolute, assertCloseSequence, maxAbsDiff, TOLERANCE } from "./_assert.ts";
import { hasWebGpu } from "./_backends.ts";

const ignore = !hasWebGpu;
if (ignore) console.log("webgpu resilience tests skipped: navigator.gpu found no WebGPU adapter");

function randomCase(
  seed: number,
  kind: "array" | "attention",
  [batch, seqLen, inputSize, hiddenSize, k]: [number, number, number, number, number],
): { spec: CellSpec; input: SequenceInput } {
  const random = new Random(seed);
  const values = (n: number) => Float32Array.from({ length: n }, () => 2 * random.uniform() - 1);
  const gates = 4 * k * hiddenSize;
  const attention = kind === "attention";
  return {
    spec: {
      variant: { kind, k, maxPooling: attention },
      inputSize,
      hiddenSize,
      params: {
        i2hWeight: values(gates * inputSize),
        i2hBias: values(gates),
        h2hWeight: values(gates * hiddenSize).map((w) => w / Math.sqrt(hiddenSize)),
        h2hBias: values(gates),
        i2aWeight: attention ? values(k * hiddenSize * inputSize) : null,
        i2aBias: attention ? values(k * hiddenSize) : null,
      },
    },
    input: {
      batch,
      seqLen,
      x: values(batch * seqLen * inputSize),
      hidden: values(batch * hiddenSize),
      state: values(k * batch * hiddenSize),
    },
  };
}

/** `promise`, or a rejection after `ms`: a lost device must never hang a call. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** 40 kB per binding: B = 65, T = 20, I = 5, H = 8, k = 2 needs 2 batch and 7 time chunks. */
const SMALL_LIMIT = 40_000;
const SPLIT_SHAPE: [number, number, number, number, number] = [65, 20, 5, 8, 2];

Deno.test("a small binding limit splits the call by batch and by time", () => {
  const [batch, seqLen, inputSize, hiddenSize, lanes] = SPLIT_SHAPE;
  const plan = planChunks({ batch, seqLen, inputSize, hiddenSize, lanes }, SMALL_LIMIT);
  assert.ok(plan.batchChunks.length > 1, `${plan.batchChunks.length} batch chunks`);
  assert.ok(plan.timeChunks.length > 1, `${plan.timeChunks.length} time chunks`);
  assert.equal(plan.batchChunks.reduce((sum, chunk) => sum + chunk.size, 0), batch);
  assert.equal(plan.timeChunks.reduce((sum, chunk) => sum + chunk.length, 0), seqLen);
  for (const [name, bytes] of Object.entries(plan.bytes)) {
    assert.ok(bytes <= SMALL_LIMIT, `${name}: ${bytes} bytes`);
  }
  const whole = planChunks(
    { batch: 1024, seqLen: 10, inputSize: 10, hiddenSize: 128, lanes: 4 },
    128 * 1024 * 1024,
  );
  assert.equal(whole.batchChunks.length, 1);
  assert.equal(whole.timeChunks.length, 1);
  assert.equal(whole.recurrent.entryPoint, "step16");
  assert.equal(
    planChunks({ batch: 1, seqLen: 100, inputSize: 64, hiddenSize: 256, lanes: 4 }, 1 << 27)
      .recurrent.entryPoint,
    "stepRow",
  );
});

Deno.test("a sequence too long for the binding limit is a clear error", () => {
  assert.throws(
    () =>
      planChunks({ batch: 3, seqLen: 5000, inputSize: 5, hiddenSize: 8, lanes: 2 }, SMALL_LIMIT),
    /does not fit the WebGPU device.*maxStorageBufferBindingSize/,
  );
});

for (const kind of ["array", "attention"] as const) {
  Deno.test({
    name: `webgpu gives the same ${kind} results when the call is split`,
    ignore,
    async fn() {
      const { spec, input } = randomCase(3, kind, SPLIT_SHAPE);
      const split = await requestWebGpuBackend({ maxStorageBufferBindingSize: SMALL_LIMIT });
      const whole = await requestWebGpuBackend();
      const expected = await (await jsBackend.compile(spec)).run(input);
      const splitRunner = await split!.compile(spec);
      const wholeRunner = await whole!.compile(spec);
      try {
        const fromSplit = await splitRunner.run(input);
        assertCloseSequence(fromSplit, expected, absolute(2e-5), "split against js");
        assertCloseSequence(
          fromSplit,
          await wholeRunner.run(input),
          TOLERANCE.reordered,
          "split against whole",
        );
      } finally {
        splitRunner.dispose();
        wholeRunner.dispose();
      }
    },
  });
}

Deno.test({
  name: "webgpu replaces a destroyed device on the next call",
  ignore,
  async fn() {
    const { spec, input } = randomCase(4, "attention", [9, 6, 3, 7, 3]);
    const backend = await requestWebGpuBackend();
    const runner = await backend!.compile(spec);
    try {
      const before = await runner.run(input);
      (await acquireGpuContext()).device.destroy();
      const after = await within(runner.run(input), 120_000, "a run after device.destroy()");
      assertCloseSequence(after, before, TOLERANCE.exact, "after destroy()");
      const fresh = await within(backend!.compile(spec), 120_000, "a compile after destroy()");
      assertCloseSequence(await fresh.run(input), before, TOLERANCE.exact, "compiled again");
      fresh.dispose();
    } finally {
      runner.dispose();
    }
  },
});

Deno.test({
  name: "webgpu: a device lost after optimizer steps on it is an error that says to load the " +
    "weights again",
  ignore,
  async fn() {
    const { spec, input } = randomCase(7, "attention", [2, 3, 3, 5, 2]);
    const runner = await (await requestWebGpuBackend())!.compile(spec);
    try {
      const before = await runner.run(input);
      const step = await runner.runTraining!(input);
      const output = new Float32Array(step.output.length).fill(1);
      await step.backward({ output }, { keepParameterGradients: "replace" });
      const sgd = { lr: 0.5, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 };
      runner.device!.step({ kind: "sgd", ...sgd });
      const stepped = await runner.run(input); // packed for inference on the device
      assert.ok(maxAbsDiff(stepped.output, before.output) > 1e-3, "the stepped weights are used");
      (await acquireGpuContext()).device.destroy();
      await assert.rejects(
        within(runner.run(input), 120_000, "a run after device.destroy()"),
        /stepped weights with it: load them again \(loadStateDict/,
      );
    } finally {
      runner.dispose();
    }
  },
});

Deno.test({
  name: "webgpu never hangs when the device is destroyed during a run",
  ignore,
  async fn() {
    const { spec, input } = randomCase(5, "array", [300, 40, 8, 32, 2]);
    const runner = await (await requestWebGpuBackend())!.compile(spec);
    const expected = await runner.run(input);
    try {
      const pending = runner.run(input);
      (await acquireGpuContext()).device.destroy();
      const outcome = await within(
        pending.then((result) => result, (error: Error) => error),
        120_000,
        "a run whose device was destroyed",
      );
      // Either the call was retried on a new device, or it says what happened.
      if (outcome instanceof Error) {
        assert.match(outcome.message, /device/i);
      } else {
        assertCloseSequence(outcome, expected, TOLERANCE.exact, "retried run");
      }
      const next = await within(runner.run(input), 120_000, "the next run");
      assertCloseSequence(next, expected, TOLERANCE.exact, "the next run");
    } finally {
      runner.dispose();
    }
  },
});

Deno.test({
  name: "webgpu runners disposed mid-run reject that run or finish it",
  ignore,
  async fn() {
    const { spec, input } = randomCase(6, "array", [17, 5, 4, 6, 2]);
    const backend = await requestWebGpuBackend();
    const interrupted = await backend!.compile(spec);
    const pending = interrupted.run(input);
    interrupted.dispose();
    const outcome = await within(
      pending.then(() => null, (error: Error) => error),
      60_000,
      "a run whose runner was disposed",
    );
    if (outcome !== null) assert.match(outcome.message, /disposed/);
  },
});

Deno.test({
  name: "hardwareOnly refuses software adapters such as lavapipe",
  ignore,
  async fn() {
    const hardware = await requestWebGpuBackend({ hardwareOnly: true });
    assert.equal(hardware === null, isSoftwareAdapter((await requestGpuAdapter())!));
  },
});

Deno.test("software adapters are recognised by flag, name or Mesa's vendor id", () => {
  const fake = (info: Partial<GPUAdapterInfo>) => ({ info }) as unknown as GPUAdapter;
  const lavapipe = {
    vendor: "65541",
    architecture: "",
    device: "0",
    description: "llvmpipe (LLVM 15.0.6, 256 bits)",
  };
  assert.ok(isSoftwareAdapter(fake({ ...lavapipe, isFallbackAdapter: true })));
  assert.ok(isSoftwareAdapter(fake({ ...lavapipe, isFallbackAdapter: false })));
  assert.ok(isSoftwareAdapter(fake({ vendor: "google", description: "SwiftShader Device" })));
  assert.ok(isSoftwareAdapter(fake({ vendor: "65541", description: "" })));
  assert.ok(!isSoftwareAdapter(fake({ vendor: "nvidia", description: "NVIDIA H100 80GB HBM3" })));
  assert.ok(!isSoftwareAdapter(fake({ vendor: "4318", architecture: "", description: "" })));
});
