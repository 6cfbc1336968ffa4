/**
 * fit: it learns tiny tasks, its callbacks (early stopping, checkpoint-best, schedules,
 * progress) do what they say, its metrics agree with the loss, batches pad and shuffle as
 * documented, and bad inputs are refused naming the argument.
 */

import assert from "node:assert/strict";
import {
  accuracy,
  Adam,
  batches,
  bitsPerToken,
  checkpointBest,
  CosineAnnealingLR,
  earlyStopping,
  Embedding,
  fit,
  GRU,
  LastStep,
  learningRateScheduler,
  Linear,
  LSTM,
  type Metric,
  progress,
  Random,
  Sequential,
  SGD,
  StepLR,
  tensor,
  topKAccuracy,
} from "../mod.ts";

/** Next-token windows of a periodic text "abcdabcd...": learnable in a few epochs. */
function periodic(): { inputs: number[][]; targets: number[][] } {
  const text = Array.from({ length: 40 }, (_, i) => i % 4);
  const inputs = [], targets = [];
  for (let i = 0; i + 6 < text.length; i += 3) {
    inputs.push(text.slice(i, i + 6));
    targets.push(text.slice(i + 1, i + 7));
  }
  return { inputs, targets };
}

function languageModel(): Sequential {
  return new Sequential([
    new Embedding(4, 6, { seed: 1 }),
    new LSTM(6, 12, { backend: "js", seed: 2 }),
    new Linear(12, 4, { seed: 3 }),
  ]);
}

/** A tiny classifier's data: is token 1 among the (padded) sequence's tokens? */
function containsOne(): { inputs: number[][]; targets: number[] } {
  const random = new Random(5);
  const inputs = Array.from(
    { length: 24 },
    (_, n) => Array.from({ length: 2 + (n % 4) }, () => 2 + (random.nextUint32() % 3)),
  );
  inputs.forEach((sequence, n) => {
    if (n % 2 === 0) sequence[random.nextUint32() % sequence.length] = 1;
  });
  return { inputs, targets: inputs.map((sequence) => sequence.includes(1) ? 1 : 0) };
}

/** A metric whose value is scripted per epoch (one batch an epoch), to drive the monitors. */
function scripted(values: number[]): Metric {
  let calls = 0;
  return { name: "scripted", measure: () => ({ total: values[calls++], count: 1 }) };
}

Deno.test("fit reduces the loss of a next-token model, metrics and validation included", async () => {
  const model = languageModel();
  const data = periodic();
  const history = await fit(model, data, {
    optimizer: new Adam(model.parameters(), { lr: 0.05 }),
    epochs: 12,
    batchSize: 4,
    validation: { inputs: data.inputs.slice(0, 4), targets: data.targets.slice(0, 4) },
    metrics: [accuracy(), topKAccuracy(2), bitsPerToken()],
  });
  assert.equal(history.epochs.length, 12);
  assert.equal(history.stopReason, null);
  const [first, last] = [history.epochs[0].metrics, history.epochs.at(-1)!.metrics];
  assert.deepEqual(Object.keys(last).sort(), [
    "accuracy",
    "bits_per_token",
    "loss",
    "top2_accuracy",
    "val_accuracy",
    "val_bits_per_token",
    "val_loss",
    "val_top2_accuracy",
  ]);
  assert.ok(last.loss < first.loss / 3, `loss ${first.loss} -> ${last.loss}`);
  assert.ok(last.val_accuracy > 0.95, `val_accuracy ${last.val_accuracy}`);
  assert.ok(last.top2_accuracy >= last.accuracy);
  assert.ok(Math.abs(last.val_bits_per_token - last.val_loss / Math.LN2) < 1e-5);
  assert.equal(model.layers[1].training, false, "left in eval mode");
  assert.ok(history.epochs.every((epoch) => epoch.steps === 3 && epoch.seconds > 0));
});

Deno.test("fit trains a classifier of padded sequences through LastStep", async () => {
  const model = new Sequential([
    new Embedding(5, 4, { seed: 1 }),
    new GRU(4, 8, { seed: 2 }),
    new LastStep(),
    new Linear(8, 2, { seed: 3 }),
  ]);
  const history = await fit(model, containsOne(), {
    optimizer: new Adam(model.parameters(), { lr: 0.03 }),
    epochs: 25,
    batchSize: 8,
    metrics: [accuracy()],
    clipGradNorm: 1,
    seed: 3,
  });
  const last = history.epochs.at(-1)!.metrics;
  assert.ok(last.loss < history.epochs[0].metrics.loss / 2, `loss ${last.loss}`);
  assert.ok(last.accuracy > 0.9, `accuracy ${last.accuracy}`);
});

Deno.test("earlyStopping stops after patience epochs without improvement and restores the best", async () => {
  const model = languageModel();
  let best: unknown = null;
  const history = await fit(model, periodic(), {
    optimizer: new SGD(model.parameters(), { lr: 0.5 }),
    epochs: 10,
    batchSize: 32,
    metrics: [scripted([3, 2, 2.5, 2.4, 2.2, 1])],
    callbacks: [
      earlyStopping({ monitor: "scripted", patience: 3, restoreBest: true }),
      checkpointBest({ monitor: "scripted", save: (m) => void (best = m.stateDict()) }),
    ],
  });
  assert.equal(history.epochs.length, 5);
  assert.match(history.stopReason!, /scripted did not improve for 3 epochs \(best 2 at epoch 1\)/);
  assert.deepEqual(model.stateDict(), best, "epoch 1's weights");
});

Deno.test("checkpointBest calls save at each improvement, last with the best epoch", async () => {
  const model = languageModel();
  const saved: number[] = [];
  let bestWeights = null;
  await fit(model, periodic(), {
    optimizer: new SGD(model.parameters(), { lr: 0.1 }),
    epochs: 5,
    batchSize: 32,
    metrics: [scripted([3, 1, 2, 0.5, 4])],
    callbacks: [
      checkpointBest({
        monitor: "scripted",
        save: (m, log) => {
          saved.push(log.epoch);
          bestWeights = m.stateDict();
        },
      }),
    ],
  });
  assert.deepEqual(saved, [0, 1, 3]);
  assert.ok(bestWeights !== null);
  const maxSaved: number[] = [];
  await fit(languageModel(), periodic(), {
    epochs: 4,
    metrics: [scripted([0.1, 0.5, 0.3, 0.6])],
    callbacks: [
      checkpointBest({
        monitor: "scripted",
        mode: "max",
        save: (_, l) => void maxSaved.push(l.epoch),
      }),
    ],
  });
  assert.deepEqual(maxSaved, [0, 1, 3]);
});

Deno.test("learningRateScheduler steps StepLR and CosineAnnealingLR once per epoch", async () => {
  const model = languageModel();
  const optimizer = new SGD(model.parameters(), { lr: 0.8 });
  const stepped = await fit(model, periodic(), {
    optimizer,
    epochs: 4,
    callbacks: [learningRateScheduler(new StepLR(optimizer, { stepSize: 2, gamma: 0.5 }))],
  });
  assert.deepEqual(stepped.epochs.map((e) => e.lr), [0.8, 0.8, 0.4, 0.4]);
  assert.equal(optimizer.lr, 0.2);
  const cosine = new SGD(model.parameters(), { lr: 1 });
  const annealed = await fit(model, periodic(), {
    optimizer: cosine,
    epochs: 3,
    callbacks: [learningRateScheduler(new CosineAnnealingLR(cosine, { tMax: 2 }))],
  });
  assert.deepEqual(annealed.epochs.map((e) => Number(e.lr.toFixed(6))), [1, 0.5, 0]);
  const other = new SGD(model.parameters(), { lr: 1 });
  await assert.rejects(
    () =>
      fit(model, periodic(), {
        optimizer: cosine,
        callbacks: [learningRateScheduler(new StepLR(other, { stepSize: 1 }))],
      }),
    /schedule drives another optimizer than the one fit uses/,
  );
});

Deno.test("progress reports steps/s, the loss and an ETA, and every metric per epoch", async () => {
  const lines: string[] = [];
  await fit(languageModel(), periodic(), {
    epochs: 2,
    batchSize: 4,
    metrics: [accuracy()],
    callbacks: [progress({ write: (line) => void lines.push(line), intervalSeconds: 0 })],
  });
  assert.equal(lines.length, 2 * 3 + 2);
  assert.match(lines[0], /^epoch 1\/2 · step 1\/3 · [\d.]+ steps\/s · loss [\d.]+ · ETA \d+s$/);
  assert.match(lines[3], /^epoch 1\/2 done in [\d.]+s · loss [\d.]+ · accuracy [\d.]+ · lr 0.001$/);
  assert.match(lines[4], /^epoch 2\/2 · step 1\/3 /);
  const quiet: string[] = [];
  await fit(languageModel(), periodic(), {
    batchSize: 1,
    callbacks: [progress({ write: (line) => void quiet.push(line), intervalSeconds: 60 })],
  });
  assert.equal(quiet.length, 2, "the first step line, then only the epoch line");
});

Deno.test("an aborted signal stops fit between steps; a finished epoch keeps its validation", async () => {
  const stop = new AbortController();
  const steps: number[] = [];
  const cutShort = await fit(languageModel(), periodic(), {
    epochs: 3,
    batchSize: 4,
    validation: periodic(),
    signal: stop.signal,
    callbacks: [{
      onBatchEnd(step): void {
        steps.push(step.globalStep);
        if (step.globalStep === 2) stop.abort();
      },
    }],
  });
  assert.deepEqual(steps, [1, 2], "the step under way finishes, no other starts");
  assert.equal(cutShort.stopReason, "aborted");
  assert.equal(cutShort.epochs.length, 0, "an epoch cut short has no log or validation");

  const atEpochEnd = new AbortController();
  const whole = await fit(languageModel(), periodic(), {
    epochs: 3,
    batchSize: 4,
    validation: periodic(),
    signal: atEpochEnd.signal,
    callbacks: [{ onBatchEnd: (step) => void (step.globalStep === 3 && atEpochEnd.abort()) }],
  });
  assert.equal(whole.stopReason, "aborted");
  assert.equal(whole.epochs.length, 1);
  assert.ok(Number.isFinite(whole.epochs[0].metrics.val_loss), "the finished epoch is validated");

  // A signal that a timer aborts lands although the steps never wait.
  const timed = await fit(languageModel(), periodic(), {
    epochs: 1000,
    batchSize: 4,
    signal: AbortSignal.timeout(100),
  });
  assert.equal(timed.stopReason, "aborted");
  assert.ok(timed.epochs.length < 1000);
  await assert.rejects(
    () => fit(languageModel(), periodic(), { signal: {} as never }),
    /options\.signal must be an AbortSignal/,
  );
});

Deno.test("initialStep: a resumed run's steps count on from it, and progress counts the run", async () => {
  const seen: number[] = [];
  const lines: string[] = [];
  const report = progress({
    write: (line) => void lines.push(line),
    intervalSeconds: 0,
    totalSteps: 9,
  });
  const model = languageModel();
  const optimizer = new Adam(model.parameters());
  for (const initialStep of [0, 3, 6]) {
    await fit(model, periodic(), {
      optimizer,
      batchSize: 4,
      initialStep,
      callbacks: [report, { onBatchEnd: (step) => void seen.push(step.globalStep) }],
    });
  }
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(lines.length, 9, "step lines only: a call's epoch is a part of the run");
  assert.match(lines[0], /^step 1\/9 · [\d.]+ steps\/s · loss [\d.]+ · ETA \d+s$/);
  assert.match(lines[8], /^step 9\/9 · .* ETA 0s$/);
  await assert.rejects(
    () => fit(model, periodic(), { initialStep: -1 }),
    /options\.initialStep must be an integer ≥ 0, got -1/,
  );
  assert.throws(() => progress({ totalSteps: 0 }), /options\.totalSteps must be an integer ≥ 1/);
});

Deno.test("batches pad ids and targets, carry lengths, shuffle reproducibly", () => {
  const data = { inputs: [[1, 2], [3], [4, 5, 6], [7]], targets: [[2, 9], [9], [5, 6, 9], [9]] };
  const [first, second] = batches(data, { batchSize: 3, padId: 8, ignoreIndex: -1 });
  assert.deepEqual(first.inputs, [[1, 2, 8], [3, 8, 8], [4, 5, 6]]);
  assert.deepEqual(first.targets, [2, 9, -1, 9, -1, -1, 5, 6, 9]);
  assert.deepEqual([...first.lengths!], [2, 1, 3]);
  assert.deepEqual(second.inputs, [[7]]);
  const random = new Random(3);
  const epochs = [1, 2, 3].map(() =>
    batches(data, { batchSize: 4, shuffle: true, seed: random })[0].inputs
  );
  assert.ok(epochs.some((order) => JSON.stringify(order) !== JSON.stringify(epochs[0])));
  assert.deepEqual(
    batches(data, { batchSize: 4, shuffle: true, seed: 5 }),
    batches(data, { batchSize: 4, shuffle: true, seed: 5 }),
  );
  const features = batches({ inputs: tensor([1, 2, 3, 4, 5, 6], [3, 2]), targets: [0, 1, 0] }, {
    batchSize: 2,
  });
  assert.deepEqual(features.map((b) => b.inputs), [
    tensor([1, 2, 3, 4], [2, 2]),
    tensor([5, 6], [1, 2]),
  ]);
  assert.equal(features[0].lengths, undefined);
});

Deno.test("bad inputs are refused naming the argument", async () => {
  const model = languageModel();
  const data = periodic();
  const cases: [() => unknown, RegExp][] = [
    [() => fit(model, null as never), /data must be \{ inputs, targets \}.*got null/],
    [
      () => fit(model, { inputs: [[1, 2]], targets: [[1]] }),
      /data\.targets\[0\] must have one id per step of inputs\[0\] \(2\), got 1/,
    ],
    [
      () => fit(model, { inputs: [[1]], targets: [1, 2] }),
      /data\.targets must have one entry per example \(1 inputs\), got 2/,
    ],
    [
      () => fit(model, { inputs: [[]], targets: [1] }),
      /data\.inputs\[0\] must be a non-empty array of token ids/,
    ],
    [() => fit(model, data, { epochs: 0 }), /options\.epochs must be an integer ≥ 1, got 0/],
    [
      () => fit(model, data, { batchSize: 2.5 }),
      /options\.batchSize must be an integer ≥ 1, got 2\.5/,
    ],
    [
      () => fit(model, data, { optimizer: {} as never }),
      /options\.optimizer must be an optimizer .*got a plain object/,
    ],
    [
      () => fit(model, data, { metrics: ["accuracy" as never] }),
      /options\.metrics\[0\] must be a metric such as accuracy\(\).*got string "accuracy"/,
    ],
    [
      () => fit(model, data, { loss: "nll" as never }),
      /options\.loss must be "crossEntropy", "mse" or a function/,
    ],
    [
      () => fit(model, data, { callbacks: [null as never] }),
      /options\.callbacks\[0\] must be a callback/,
    ],
    [
      () => fit(model, data, { validation: { inputs: [[1]] } as never }),
      /options\.validation must be \{ inputs, targets \}/,
    ],
    [
      () => fit(model, data, { clipGradNorm: -1 }),
      /options\.clipGradNorm must be a number > 0, got -1/,
    ],
    [() => fit({} as never, data), /model must be a Sequential .*got a plain object/],
    [
      () =>
        fit(model, data, {
          metrics: [accuracy()],
          callbacks: [earlyStopping({ monitor: "val_loss" })],
        }),
      /options\.monitor "val_loss" is not among this run's metrics \(loss, accuracy\)/,
    ],
  ];
  for (const [call, message] of cases) {
    await assert.rejects(async () => await call(), message);
  }
  assert.throws(
    () => batches(data, { batchSize: 0 }),
    /options\.batchSize must be an integer ≥ 1, got 0/,
  );
  assert.throws(() => topKAccuracy(0), /k must be an integer ≥ 1, got 0/);
  assert.throws(() => earlyStopping({ patience: -1 }), /options\.patience must be an integer ≥ 0/);
  assert.throws(() => checkpointBest({} as never), /options\.save must be a function/);
  assert.throws(
    () => learningRateScheduler({} as never),
    /schedule must be a learning-rate schedule/,
  );
});
