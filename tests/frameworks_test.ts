// Files written by Keras 3, tf_keras 2, torch 2.x and torch 1.13 themselves
// (tests/testdata/frameworks/generate.py), loaded with the documented API and compared with the
// framework's own outputs on every available backend; and the files that must be refused.

import assert from "node:assert/strict";
import {
  fromKeras,
  fromTorch,
  type FromTorchOptions,
  loadKeras,
  loadTorch,
  readSafetensors,
  type Tensor,
} from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { AVAILABLE_BACKENDS } from "./_backends.ts";

const DIR = new URL("./testdata/frameworks/", import.meta.url);
const read = (name: string): Uint8Array => Deno.readFileSync(new URL(name, DIR));
const expected = readSafetensors(read("expected.safetensors")).tensors;
interface Listing {
  version: string;
  files: {
    file: string;
    case: string;
    tokens?: boolean;
    options?: FromTorchOptions;
    refused?: string;
  }[];
}
const manifest: Record<string, Listing> = JSON.parse(
  new TextDecoder().decode(read("files.json")),
);

function want(key: string): Tensor {
  const tensor = expected[key];
  assert.ok(tensor !== undefined, `expected.safetensors lacks ${key}`);
  return tensor;
}

// The Keras models this package refuses, with the words of the error.
const KERAS_REFUSED: Record<string, string> = {
  embedding_mask_zero: "has mask_zero true, which is not supported",
  lstm_activation_selu: 'has activation "selu", which is not supported',
};

const WEIGHTS_ONLY = /(\.weights\.h5|_weights\.h5)$/;

for (const flavour of ["keras3", "keras2"]) {
  for (const { file, case: name, tokens } of manifest[flavour].files) {
    const model = name.slice(flavour.length + 1);
    const refused = KERAS_REFUSED[model];
    Deno.test(`${file} (Keras ${manifest[flavour].version}): ${refused ? "refused" : "predict"}`, async () => {
      const options = WEIGHTS_ONLY.test(file)
        ? { config: new TextDecoder().decode(read(`${name}.config.json`)) }
        : {};
      const layers = await loadKeras(read(file), options);
      if (refused !== undefined) {
        assert.throws(() => fromKeras(layers, { backend: "js" }), (error: Error) => {
          assert.ok(error.message.includes(refused), error.message);
          return true;
        });
        return;
      }
      const input = want(`${name}/input`);
      const x = tokens
        ? Array.from(
          { length: input.shape[0] },
          (_, b) => Array.from(input.data.subarray(b * input.shape[1], (b + 1) * input.shape[1])),
        )
        : input;
      // A .weights.h5 does not say which Keras wrote it: its hard sigmoid must be named.
      const unversioned = model === "lstm_hard_sigmoid" && file.endsWith(".weights.h5");
      if (unversioned) {
        assert.throws(() => fromKeras(layers), /does not say which Keras wrote it/);
      }
      for (const backend of AVAILABLE_BACKENDS) {
        const { model } = fromKeras(layers, {
          backend,
          ...(unversioned ? { recurrentActivation: "hard_sigmoid_keras3" } : {}),
        });
        const y = await model.forward(x);
        assertClose(y, want(`${name}/output`), TOLERANCE.backends, `${file} on ${backend}`);
      }
    });
  }
}

for (const flavour of ["torch2", "torch1"]) {
  for (const { file, case: name, options, refused } of manifest[flavour].files) {
    const label = refused ? "refused" : "output, h_n, c_n";
    Deno.test(`${file} (torch ${manifest[flavour].version}): ${label}`, async () => {
      const record = loadTorch(read(file));
      if (refused !== undefined) {
        assert.throws(() => fromTorch(record, { ...options!, backend: "js" }), (error: Error) => {
          assert.ok(error.message.includes(refused), error.message);
          return true;
        });
        return;
      }
      for (const backend of AVAILABLE_BACKENDS) {
        using net = fromTorch(record, { ...options!, backend });
        const { output, hidden, state } = await net.forward(want(`${name}/input`));
        const where = `${file} on ${backend}`;
        assertClose(output, want(`${name}/output`), TOLERANCE.backends, `${where}: output`);
        assertClose(hidden, want(`${name}/hidden`), TOLERANCE.backends, `${where}: h_n`);
        if (options!.mode === "LSTM") {
          assertClose(state!, want(`${name}/state`), TOLERANCE.backends, `${where}: c_n`);
        }
      }
    });
  }
}

Deno.test("fromTorch says what a record holds and what to pass", () => {
  const two = loadTorch(read("torch2_prefix_two.pt"));
  assert.throws(
    () => fromTorch(two, { mode: "LSTM", prefix: "decoder." }),
    /record holds no decoder\.weight_ih_l0 .* under "encoder\.rnn\.", "decoder\.rnn\."/,
  );
  assert.throws(
    () => fromTorch({ weight: want("torch2_prefix/input") }, { mode: "LSTM" }),
    /record holds no weight_ih_l0 of a torch recurrent module \(its keys: weight\)/,
  );
  assert.throws(
    () => fromTorch(loadTorch(read("torch2_gru_2layer_bidi.pt")), { mode: "LSTM" }),
    /3 gate blocks of 4 hidden units, a GRU's, but options\.mode is LSTM/,
  );
});
