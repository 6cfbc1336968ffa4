/**
 * The training trajectories of the reference (tests/testdata/golden_train) replayed through the public
 * API on one backend: losses, step-0 gradients and final weights within the README's tolerances.
 *
 * @module
 */

import {
  Adam,
  AdamW,
  clipGradNorm,
  Linear,
  oneHot,
  type Optimizer,
  type Parameter,
  SGD,
} from "../mod.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { classifierLoss } from "./_classifier.ts";
import { absolute, assertClose, TOLERANCE } from "./_assert.ts";
import { isAvailable } from "./_backends.ts";
import {
  goldenModel,
  goldenTrainEntries,
  type GoldenTrainEntry,
  loadGoldenTrainCase,
} from "./_golden.ts";

/** The optimizer a trajectory used, over `params`. */
export function optimizerOf(
  spec: GoldenTrainEntry["optimizer"],
  params: Parameter[],
): Optimizer {
  const { name, lr, betas, eps, weight_decay: weightDecay, momentum } = spec;
  if (name === "SGD") return new SGD(params, { lr, momentum, weightDecay });
  const Class = name === "Adam" ? Adam : AdamW;
  return new Class(params, { lr, betas, eps, weightDecay });
}

/** One `Deno.test` per trajectory on `backend`, ignored where the backend is not available. */
export function defineGoldenTrainTests(backend: ResolvedBackendName): void {
  for (const entry of goldenTrainEntries()) {
    Deno.test({
      name: `golden training on ${backend}: ${entry.file}`,
      ignore: !isAvailable(backend),
      async fn() {
        const golden = loadGoldenTrainCase(entry);
        const t = golden.tensors;
        const { input_size: I, hidden_size: H, classes: C, batch: B } = entry.dims;
        using lstm = goldenModel(golden, backend, "lstm.");
        const linear = new Linear(H, C);
        linear.loadStateDict({ weight: t["linear.weight"], bias: t["linear.bias"] });
        lstm.train();
        linear.train();
        const groups = { lstm: lstm.parameters(), linear: linear.parameters() };
        const params = [...groups.lstm, ...groups.linear];
        using opt = optimizerOf(entry.optimizer, params);
        const [, S] = t.tokens.shape;
        const rows = Array.from(
          { length: B },
          (_, b) => [...t.tokens.data.subarray(b * S, (b + 1) * S)],
        );
        const x = oneHot(rows, I);
        for (let step = 0; step < entry.steps; step++) {
          opt.zeroGrad();
          const loss = await classifierLoss(lstm, linear, x, t.targets);
          const expected = t.losses.data.subarray(step, step + 1);
          assertClose(loss.data, expected, TOLERANCE.loss, `loss at step ${step}`);
          await loss.backward();
          if (entry.clip_grad_norm !== null) clipGradNorm(params, entry.clip_grad_norm);
          if (step === 0) {
            await opt.sync(); // webgpu keeps the gradients on the device
            for (const [group, list] of Object.entries(groups)) {
              for (const parameter of list) {
                const want = t[`grad0.${group}.${parameter.name}`].data;
                const name = `grad0.${group}.${parameter.name}`;
                assertClose(parameter.grad!.data, want, TOLERANCE.gradient, name);
              }
            }
          }
          opt.step();
        }
        await opt.sync(); // webgpu steps the weights on the device
        for (const [group, list] of Object.entries(groups)) {
          for (const parameter of list) {
            // An Adam step taken the wrong way is off by about 2·lr (the README).
            const want = t[`final.${group}.${parameter.name}`].data;
            const name = `final.${group}.${parameter.name}`;
            assertClose(parameter.value.data, want, absolute(entry.optimizer.lr / 10), name);
          }
        }
      },
    });
  }
}
