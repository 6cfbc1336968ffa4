/**
 * The golden cases made by running the PyTorch reference (tests/testdata/golden), and test
 * definitions every backend reuses.
 *
 * @module
 */

import type {
  Backend,
  BackendName,
  CellSpec,
  CellVariant,
  VariantKind,
} from "../src/contract/mod.ts";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  readSafetensors,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";
import { cellParameters } from "../src/models/lstm.ts";
import { fixtureDir, fixtureIndex, readFixture } from "./_testdata.ts";
import { maxAbsDiff, TOLERANCE } from "./_assert.ts";
import { VARIANTS as TABLE } from "../src/variants.ts";

/**
 * Every LSTM-family cell variant (those with cell states), from the variant table: each kind, and
 * those that take `maxPooling` with and without it. A new variant in `src/variants.ts` is tested
 * by every suite that iterates this list (it then needs its golden fixture in tests/testdata).
 * torch's GRU and RNN have their own suites (`backend_torch_cells_test.ts`, golden_interop).
 */
export const VARIANTS: readonly (readonly [VariantKind, boolean])[] = Object.entries(TABLE)
  .filter(([, info]) => info.cellStates)
  .flatMap(([kind, info]) =>
    (info.maxPooling ? [false, true] : [false]).map((pooling) =>
      [kind as VariantKind, pooling] as const
    )
  );

/** A variant's name in test names: `attention (maxPooling)`. */
export function variantName(kind: VariantKind, maxPooling: boolean): string {
  return `${kind}${maxPooling ? " (maxPooling)" : ""}`;
}

/** Where the reference data lives: `tests/testdata/golden/`. */
export const GOLDEN_DIR: URL = fixtureDir("golden");

/** One case of `index.json`. */
export interface GoldenEntry {
  file: string;
  class: "LSTM" | "ArrayLSTM" | "AttentionArrayLSTM" | "StochasticArrayLSTM";
  ctor_args: { input_size: number; hidden_size: number; k?: number; max_pooling?: boolean };
  dims: { batch: number; seq_len: number; input_size: number; hidden_size: number; k: number };
  dtype: "F32" | "F64";
  has_grads: boolean;
}

/** A loaded case: its index entry, tensors and metadata. */
export interface GoldenCase extends GoldenEntry {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** Every case of the index, in file order. */
export function goldenEntries(): GoldenEntry[] {
  return fixtureIndex("golden") as GoldenEntry[];
}

/** Loads one case's tensors. */
export function loadGoldenCase(entry: GoldenEntry): GoldenCase {
  const { tensors, metadata } = readSafetensors(readFixture("golden", entry.file));
  return { ...entry, tensors, metadata };
}

/**
 * The model a case was made with, on `backend`, with the case's weights loaded (those named
 * `prefix` + PyTorch name: `"lstm."` in the training trajectories).
 */
export function goldenModel(
  golden: Pick<GoldenCase, "class" | "ctor_args" | "tensors">,
  backend: BackendName,
  prefix = "",
): LSTM {
  const { input_size: I, hidden_size: H, k = 1, max_pooling = false } = golden.ctor_args;
  const options = { backend };
  const model = golden.class === "LSTM"
    ? new LSTM(I, H, options)
    : golden.class === "ArrayLSTM"
    ? new ArrayLSTM(I, H, k, options)
    : golden.class === "AttentionArrayLSTM"
    ? new AttentionArrayLSTM(I, H, k, { ...options, maxPooling: max_pooling })
    : new StochasticArrayLSTM(I, H, k, options);
  model.loadStateDict(parametersOf(golden, prefix));
  return model;
}

/** The case's parameters named `prefix` + PyTorch name, by their PyTorch names. */
export function parametersOf(
  golden: Pick<GoldenCase, "tensors">,
  prefix = "",
): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(golden.tensors)
      .filter(([name]) =>
        name.startsWith(prefix) && /^(i2h|h2h|i2a)\./.test(name.slice(prefix.length))
      )
      .map(([name, value]) => [name.slice(prefix.length), value]),
  );
}

/** The cell of a case, as the backends see it. */
export function goldenSpec(golden: GoldenCase): CellSpec {
  const { input_size: I, hidden_size: H, k = 1, max_pooling = false } = golden.ctor_args;
  const kind = ({
    LSTM: "lstm",
    ArrayLSTM: "array",
    AttentionArrayLSTM: "attention",
    StochasticArrayLSTM: "stochastic",
  } as const)[golden.class];
  const variant: CellVariant = { kind, k, maxPooling: max_pooling };
  return { variant, inputSize: I, hiddenSize: H, params: cellParameters(golden.tensors) };
}

/** The initial state of a case (`undefined` when the reference used its default zeros). */
export function goldenInit(golden: GoldenCase): { hidden: Tensor; state: Tensor } | undefined {
  const { h0, c0 } = golden.tensors;
  return h0 === undefined ? undefined : { hidden: h0, state: c0 };
}

/** The forward tolerance (max abs error): looser on the saturated cases. */
export function forwardTolerance(golden: GoldenEntry): number {
  return (golden.file.includes("__sat_") ? TOLERANCE.goldenSaturated : TOLERANCE.golden).bound;
}

/** Runs a case's forward on a backend, through the public model API or a bare backend. */
export async function goldenForward(
  golden: GoldenCase,
  backend: BackendName | Backend,
): Promise<{ output: Float32Array; hidden: Float32Array; state: Float32Array }> {
  const init = goldenInit(golden);
  const { x } = golden.tensors;
  if (typeof backend === "string") {
    using model = goldenModel(golden, backend);
    const result = await model.forward(x, init);
    return { output: result.output.data, hidden: result.hidden.data, state: result.state.data };
  }
  const { batch: B, seq_len: T, hidden_size: H, k } = golden.dims;
  const runner = await backend.compile(goldenSpec(golden));
  try {
    return await runner.run({
      batch: B,
      seqLen: T,
      x: x.data,
      hidden: init?.hidden.data ?? new Float32Array(B * H),
      state: init?.state.data ?? new Float32Array(k * B * H),
    });
  } finally {
    runner.dispose();
  }
}

/**
 * Defines one `Deno.test` per golden case: the forward on `backend` matches the reference's
 * outputs, final hidden and final state within `tolerance` (default {@linkcode forwardTolerance}).
 * Records the worst error per class in `worst` when given.
 */
export function defineGoldenForwardTests(
  backend: BackendName | Backend,
  options: {
    tolerance?: (golden: GoldenEntry) => number;
    worst?: Map<string, number>;
    ignore?: boolean;
    /** The backend's name in test names; default its `name`. */
    label?: string;
  } = {},
): void {
  const name = options.label ?? (typeof backend === "string" ? backend : backend.name);
  for (const entry of goldenEntries()) {
    Deno.test({
      name: `golden forward on ${name}: ${entry.file}`,
      ignore: options.ignore ?? false,
      async fn() {
        const golden = loadGoldenCase(entry);
        const result = await goldenForward(golden, backend);
        const tolerance = (options.tolerance ?? forwardTolerance)(entry);
        const errors = {
          output: maxAbsDiff(result.output, golden.tensors.outputs.data),
          hidden: maxAbsDiff(result.hidden, golden.tensors.hidden.data),
          state: maxAbsDiff(result.state, golden.tensors.state.data),
        };
        const worst = Math.max(errors.output, errors.hidden, errors.state);
        const key = `${entry.class}${entry.ctor_args.max_pooling ? " (maxPooling)" : ""}`;
        options.worst?.set(key, Math.max(options.worst.get(key) ?? 0, worst));
        if (!(worst <= tolerance)) {
          throw new Error(
            `${entry.file} on ${name}: max abs error ${worst} > ${tolerance} (${
              JSON.stringify(errors)
            })`,
          );
        }
      },
    });
  }
}

/** One trajectory of `golden_train/index.json`. */
export interface GoldenTrainEntry {
  file: string;
  class: GoldenEntry["class"];
  ctor_args: GoldenEntry["ctor_args"];
  dims: GoldenEntry["dims"] & { classes: number };
  optimizer: {
    name: "Adam" | "AdamW" | "SGD";
    lr: number;
    betas?: [number, number];
    eps?: number;
    weight_decay: number;
    momentum?: number;
  };
  steps: number;
  clip_grad_norm: number | null;
  losses: number[];
}

/** A loaded trajectory: its index entry and tensors. */
export interface GoldenTrainCase extends GoldenTrainEntry {
  tensors: Record<string, Tensor>;
}

/** Every trajectory of the training index, in file order. */
export function goldenTrainEntries(): GoldenTrainEntry[] {
  return fixtureIndex("golden_train") as GoldenTrainEntry[];
}

/** Loads one trajectory's tensors. */
export function loadGoldenTrainCase(entry: GoldenTrainEntry): GoldenTrainCase {
  const { tensors } = readSafetensors(readFixture("golden_train", entry.file));
  return { ...entry, tensors };
}
