// tests/testdata/golden_interop on every backend: torch nn.LSTM / GRU / RNN state_dicts through
// fromTorch, and Keras LSTM stacks (sigmoid and hard sigmoid) through importKerasLSTM.
import assert from "node:assert/strict";
import {
  Bidirectional,
  fromTorch,
  importKerasDense,
  importKerasLSTM,
  type LSTM,
  readSafetensors,
  Stacked,
  type TorchMode,
  type TorchRecurrent,
} from "../mod.ts";
import { fixtureIndex, readFixture } from "./_testdata.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { BACKEND_NAMES, isAvailable } from "./_backends.ts";

interface InteropEntry {
  file: string;
  kind: "torch" | "keras";
  mode?: TorchMode;
  L?: number;
  D?: number;
  init?: boolean;
  layers?: number[];
  recurrent_activation?: "sigmoid" | "hard_sigmoid";
}

const entries = fixtureIndex("golden_interop") as unknown as InteropEntry[];

for (const backend of BACKEND_NAMES) {
  for (const entry of entries) {
    Deno.test({
      name: `golden_interop ${entry.file} on ${backend}`,
      ignore: !isAvailable(backend),
      async fn() {
        const { tensors } = readSafetensors(readFixture("golden_interop", entry.file));
        if (entry.kind === "torch") {
          const record = Object.fromEntries(
            Object.entries(tensors).filter(([name]) => /^(weight|bias)_/.test(name)),
          );
          const net = fromTorch(record, {
            mode: entry.mode!,
            numLayers: entry.L,
            bidirectional: entry.D === 2,
            backend,
          });
          // Every layer runs in this backend's own kernels, not in a fallback.
          for (const layer of net.layers) {
            const leaves = layer instanceof Bidirectional
              ? [layer.forwardLayer, layer.backwardLayer]
              : [layer];
            for (const leaf of leaves) {
              assert.equal(await (leaf as LSTM | TorchRecurrent).resolveBackend(), backend);
            }
          }
          const init = entry.init
            ? { hidden: tensors.h0, ...(tensors.c0 ? { state: tensors.c0 } : {}) }
            : undefined;
          const result = await net.forward(tensors.x, init);
          assertClose(result.output, tensors.output, TOLERANCE.golden, "output");
          assertClose(result.hidden, tensors.h_n, TOLERANCE.golden, "h_n");
          if (entry.mode === "LSTM") {
            assertClose(result.state!, tensors.c_n, TOLERANCE.golden, "c_n");
          } else assert.equal(result.state, undefined);
          net.dispose();
        } else {
          const recurrentActivation = entry.recurrent_activation!;
          const stack = new Stacked(entry.layers!.map((_, j) =>
            importKerasLSTM({
              kernel: tensors[`layer${j}.kernel`],
              recurrentKernel: tensors[`layer${j}.recurrent_kernel`],
              bias: tensors[`layer${j}.bias`],
            }, { recurrentActivation, backend })
          ));
          const dense = importKerasDense({
            kernel: tensors["dense.kernel"],
            bias: tensors["dense.bias"],
          });
          // The hard sigmoid runs in this backend's own kernels, not in a fallback.
          for (const layer of stack.layers) {
            assert.equal(await (layer as LSTM).resolveBackend(), backend);
          }
          const { output, layers } = await stack.forward(tensors.x);
          assertClose(output, tensors.sequence, TOLERANCE.golden, "sequence");
          const [B, , H] = output.shape;
          const last = layers!.at(-1)!.hidden;
          const y = await dense.forward({ shape: [B, H], data: last.data });
          assertClose(y, tensors.y, TOLERANCE.golden, "y");
          stack.dispose();
        }
      },
    });
  }
}
