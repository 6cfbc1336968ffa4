/**
 * The training half of the backend contract (`SequenceRunner.runTraining`), on every backend
 * registered in `_backends.ts` that offers it: the fused forward and backward against the float64
 * oracle (`src/reference/backward.ts`) on random cells, re-forwarding an older step, and the checks
 * `defineBackend` adds (gradient shapes, one backward per step, disposal, empty calls). A backend
 * without `runTraining` trains through the oracle itself and gets no test here.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  Backend,
  CellSpec,
  OutputGradients,
  SequenceInput,
  SequenceRunner,
  TrainingStep,
} from "../src/contract/mod.ts";
import { Random } from "../src/random.ts";
import { backward } from "../src/reference/backward.ts";
import { BACKENDS } from "./_backends.ts";
import { randomCase, randomShape, withActivation } from "./_random_cells.ts";
import { VARIANTS } from "./_golden.ts";
import { assertClose, ofLargest } from "./_assert.ts";

/** The fused step's forward against the runner's own forward: within 3e-5 × max(1, largest). */
const FORWARD = ofLargest(3e-5, 1);
/** The fused gradients against the float64 oracle: within 1e-3 × max(1, largest entry). */
const GRADIENT = ofLargest(1e-3, 1);

function randomGradients(random: Random, spec: CellSpec, input: SequenceInput): OutputGradients {
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = spec;
  const draw = (n: number) => Float32Array.from({ length: n }, () => 2 * random.uniform() - 1);
  return { output: draw(B * T * H), hidden: draw(B * H), state: draw(k * B * H) };
}

/** The runner's training step for `input`, which the backend must offer. */
async function train(runner: SequenceRunner, input: SequenceInput): Promise<TrainingStep> {
  assert.ok(runner.runTraining, "the runner offers runTraining");
  return await runner.runTraining(input);
}

async function checkAgainstOracle(
  backend: Backend,
  spec: CellSpec,
  input: SequenceInput,
  grads: OutputGradients,
): Promise<void> {
  using runner = await backend.compile(spec);
  const step = await train(runner, input);
  const expected = backward(spec, input, grads);
  const forward = await runner.run(input);
  assertClose(step.output, forward.output, FORWARD, "output");
  assertClose(step.hidden, forward.hidden, FORWARD, "hidden");
  assertClose(step.state, forward.state, FORWARD, "state");
  const actual = await step.backward(grads);
  for (const [name, value] of Object.entries(expected.params)) {
    assertClose(actual.params[name], value, GRADIENT, name);
  }
  assert.deepEqual(Object.keys(actual.params).sort(), Object.keys(expected.params).sort());
  assertClose(actual.x, expected.x, GRADIENT, "x");
  assertClose(actual.hidden, expected.hidden, GRADIENT, "initial hidden");
  assertClose(actual.state, expected.state, GRADIENT, "initial state");
}

async function offersTraining(backend: Backend): Promise<boolean> {
  const { spec } = randomCase(new Random(1), "lstm", false, {
    batch: 1,
    seqLen: 1,
    inputSize: 1,
    hiddenSize: 1,
    k: 1,
  });
  using runner = await backend.compile(spec);
  return runner.runTraining !== undefined;
}

// Backends without `runTraining` (js by design, webgpu without an adapter) train with the oracle:
// the golden training tests cover them, so they register nothing here.
for (const { label, backend } of BACKENDS) {
  if (backend === null || !await offersTraining(backend)) continue;
  const test = (name: string, fn: (backend: Backend) => Promise<void>) =>
    Deno.test({ name: `${label}: training: ${name}`, fn: () => fn(backend) });

  for (const [index, [kind, maxPooling]] of VARIANTS.entries()) {
    for (const large of [false, true]) {
      const size = large ? "large" : "small";
      test(`fused backward matches the oracle: ${kind}${maxPooling ? " (max)" : ""}, ${size}`, () => {
        const random = new Random(100 + 2 * index + (large ? 1 : 0));
        const shape = randomShape(random, kind, large);
        // Keep the oracle's float64 replay quick.
        const { spec, input } = randomCase(random, kind, maxPooling, {
          ...shape,
          seqLen: Math.min(shape.seqLen, large ? 8 : 6),
        });
        return checkAgainstOracle(backend!, spec, input, randomGradients(random, spec, input));
      });
    }
  }

  // Small cells: a pre-activation within rounding of a hard sigmoid's kink could take the other
  // side's slope in float32, and the more values, the likelier one is.
  for (const activation of ["hard_sigmoid", "hard_sigmoid_keras3"] as const) {
    for (const [index, [kind, maxPooling]] of VARIANTS.entries()) {
      const name = `${kind}${maxPooling ? " (max)" : ""}`;
      test(`fused backward with ${activation} gates matches the oracle: ${name}`, () => {
        const random = new Random(300 + index);
        const shape = {
          batch: 3,
          seqLen: 5,
          inputSize: 7,
          hiddenSize: 9,
          k: kind === "lstm" ? 1 : 3,
        };
        const { spec, input } = withActivation(
          randomCase(random, kind, maxPooling, shape),
          activation,
        );
        return checkAgainstOracle(backend!, spec, input, randomGradients(random, spec, input));
      });
    }
  }

  test("a step recorded before another one back-propagates through its own forward", async (b) => {
    const random = new Random(7);
    const shape = { batch: 3, seqLen: 4, inputSize: 5, hiddenSize: 6, k: 2 };
    const first = randomCase(random, "array", false, shape);
    const second = randomCase(random, "array", false, shape);
    using runner = await b.compile(first.spec);
    const grads = randomGradients(random, first.spec, first.input);
    const one = await train(runner, first.input);
    const two = await train(runner, second.input);
    const expected = backward(first.spec, first.input, grads);
    const actual = await one.backward(grads);
    assertClose(actual.params["i2h.weight"], expected.params["i2h.weight"], GRADIENT, "i2h.weight");
    assertClose(actual.x, expected.x, GRADIENT, "x");
    const expectedTwo = backward(first.spec, second.input, grads);
    const actualTwo = await two.backward(grads);
    assertClose(actualTwo.x, expectedTwo.x, GRADIENT, "second x");
  });

  test("backward is checked, runs once and not after dispose", async (b) => {
    const random = new Random(8);
    const { spec, input } = randomCase(random, "lstm", false, {
      batch: 2,
      seqLen: 3,
      inputSize: 2,
      hiddenSize: 4,
      k: 1,
    });
    const runner = await b.compile(spec);
    const step = await train(runner, input);
    await assert.rejects(
      step.backward({ output: new Float32Array(5) }),
      /grads.output must have \(batch, seqLen, hiddenSize\) = \(2, 3, 4\) = 24 floats, got 5/,
    );
    await assert.rejects(
      step.backward({ output: new Float32Array(24), state: new Float32Array(3) }),
      /grads.state/,
    );
    await step.backward({ output: new Float64Array(24) });
    await assert.rejects(step.backward({ output: new Float32Array(24) }), /already called/);
    const later = await train(runner, input);
    runner.dispose();
    await assert.rejects(later.backward({ output: new Float32Array(24) }), /disposed/);
    await assert.rejects(train(runner, input), /disposed/);
  });

  test("an empty call passes the final-state gradients to the initial state", async (b) => {
    const { spec } = randomCase(new Random(9), "array", false, {
      batch: 2,
      seqLen: 1,
      inputSize: 3,
      hiddenSize: 2,
      k: 2,
    });
    using runner = await b.compile(spec);
    const input = {
      batch: 2,
      seqLen: 0,
      x: new Float32Array(0),
      hidden: new Float32Array([1, 2, 3, 4]),
      state: new Float32Array(8).fill(5),
    };
    const step = await train(runner, input);
    assert.deepEqual(step.hidden, input.hidden);
    const dHidden = new Float32Array([1, 1, 2, 2]);
    const grads = await step.backward({ output: new Float32Array(0), hidden: dHidden });
    assert.deepEqual(grads.hidden, dHidden);
    assert.deepEqual(grads.state, new Float32Array(8));
    assert.equal(grads.params["i2h.weight"].length, 4 * 2 * 2 * 3);
  });
}
