/**
 * Regression tests of the WASM backend's reliability fixes (issue 11): NaN propagates to its own
 * sequence only, as on the js backend and in PyTorch; a call too large for wasm32 memory is
 * refused with a clear error before it reaches the kernels; and memory above 2 GiB is addressed
 * correctly (wasm returns addresses as `i32`).
 */

import assert from "node:assert/strict";
import { type CellSpec, type SequenceInput, stateRows } from "../src/contract/mod.ts";
import { jsBackend } from "../src/backends/js/mod.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import { WasmKernel } from "../src/backends/wasm/kernel.ts";
import { createInstance } from "../src/backends/wasm/bindings.ts";
import { lstmCellArguments } from "../src/backends/cell_arguments.ts";
import { Random } from "../src/random.ts";
import { type VariantKind, VARIANTS } from "../src/variants.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

function uniformArray(random: Random, length: number): Float32Array {
  return Float32Array.from({ length }, () => random.uniform() - 0.5);
}

function randomSpec(random: Random, kind: VariantKind, I: number, H: number): CellSpec {
  const k = VARIANTS[kind].lanes === "one" ? 1 : 3;
  const rows = VARIANTS[kind].gates * k * H;
  const attention = VARIANTS[kind].attention;
  return {
    variant: { kind, k, maxPooling: false },
    inputSize: I,
    hiddenSize: H,
    params: {
      i2hWeight: uniformArray(random, rows * I),
      i2hBias: uniformArray(random, rows),
      h2hWeight: uniformArray(random, rows * H),
      h2hBias: uniformArray(random, rows),
      i2aWeight: attention ? uniformArray(random, k * H * I) : null,
      i2aBias: attention ? uniformArray(random, k * H) : null,
    },
  };
}

function randomInput(random: Random, spec: CellSpec, batch: number, seqLen: number): SequenceInput {
  const { inputSize: I, hiddenSize: H } = spec;
  return {
    batch,
    seqLen,
    x: uniformArray(random, batch * seqLen * I),
    hidden: uniformArray(random, batch * H),
    state: uniformArray(random, stateRows(spec.variant) * batch * H),
  };
}

for (const kind of Object.keys(VARIANTS) as VariantKind[]) {
  Deno.test(`wasm propagates NaN to that sequence only, as js does: ${kind}`, async () => {
    const random = new Random(11);
    const spec = randomSpec(random, kind, 5, 7);
    const input = randomInput(random, spec, 3, 4);
    // Sequence 1, step 2, feature 3.
    const x = input.x.slice();
    x[(1 * 4 + 2) * 5 + 3] = NaN;
    const withNaN = { ...input, x };
    const js = await (await jsBackend.compile(spec)).run(withNaN);
    const wasm = await (await createWasmBackend({ threads: 1 }).compile(spec)).run(withNaN);
    // The js oracle: NaN from step 2 of sequence 1 on, nothing elsewhere.
    const outputNaN = Array.from(js.output, Number.isNaN);
    assert.ok(outputNaN.some((nan) => nan), "js turns the sequence to NaN");
    assert.ok(Array.from(js.output.subarray(0, 4 * 7)).every(Number.isFinite));
    assert.ok(Array.from(js.output.subarray(2 * 4 * 7)).every(Number.isFinite));
    assertClose(wasm.output, js.output, TOLERANCE.float32, "output", { nanMatches: true });
    assertClose(wasm.hidden, js.hidden, TOLERANCE.float32, "hidden", { nanMatches: true });
    assertClose(wasm.state, js.state, TOLERANCE.float32, "state", { nanMatches: true });
  });
}

Deno.test("the wasm kernel refuses a call that cannot fit in wasm32 memory, and keeps working", async () => {
  // batch · seqLen · hidden = 2^14 · 2^10 · 2^8 = 2^32 floats of output: this wrapped a 32-bit
  // size to 0 before and wrote out of bounds. (The backend splits such a batch into chunks; the
  // kernel itself must refuse it.)
  const random = new Random(3);
  const spec = randomSpec(random, "lstm", 1, 256);
  const kernel = new WasmKernel(spec);
  const batch = 2 ** 14, seqLen = 2 ** 10;
  const huge: SequenceInput = {
    batch,
    seqLen,
    x: new Float32Array(batch * seqLen),
    hidden: new Float32Array(batch * 256),
    state: new Float32Array(batch * 256),
  };
  assert.throws(() => kernel.run(huge), (error: Error) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /batch 16384 × seqLen 1024 .* wasm32 memory holds \(4 GiB\)/);
    return true;
  });
  const small = randomInput(random, spec, 2, 3);
  const expected = await (await jsBackend.compile(spec)).run(small);
  assertClose(
    kernel.run(small).output,
    expected.output,
    TOLERANCE.float32,
    "output after the refusal",
    { nanMatches: true },
  );
  kernel.dispose();
});

Deno.test("wasm reads and writes memory above 2 GiB (unsigned addresses)", async () => {
  const random = new Random(5);
  const spec = randomSpec(random, "array", 6, 9);
  const input = randomInput(random, spec, 3, 4);
  // A fresh instance whose memory first grows past 2 GiB (untouched pages, so no real memory is
  // used): every allocation of the cell then lands above 2^31, where i32 addresses are negative.
  const module = createInstance("plain");
  module.memory.grow(2 ** 15);
  const cell = new module.Cell(...lstmCellArguments(spec));
  try {
    cell.forward(input.batch, input.seqLen, input.x, input.hidden, input.state);
    const address = cell.output_ptr();
    assert.ok(address >= 2 ** 31, `output at ${address}, expected above 2 GiB`);
    const output = new Float32Array(module.memory.buffer, address, input.batch * input.seqLen * 9);
    const expected = await (await jsBackend.compile(spec)).run(input);
    assertClose(output.slice(), expected.output, TOLERANCE.float32, "output", { nanMatches: true });
  } finally {
    cell.free();
  }
});
