/**
 * An LSTM-family model's binding to its backend: the compiled runner (compiled, cached and
 * disposed by a {@linkcode RunnerCache}), the parameters bound to the weights a runner updates in
 * place, and the fused paths of `forward` that run on the runner (whole sequences, recorded for
 * training or not, and packed sequences of several lengths).
 *
 * @module
 */

import {
  type BackendName,
  type CellParameters,
  type CellSpec,
  type CellVariant,
  parameterSizes,
  type RecurrentActivation,
  type RelevanceStep,
  type SequenceExtras,
  type SequenceOutput,
  type SequenceRunner,
} from "../contract/mod.ts";
import { selectBackend } from "../backends/select.ts";
import { DeviceGroup } from "../nn/device_group.ts";
import type { Parameter } from "../nn/parameter.ts";
import { ResidentGroup } from "../nn/resident.ts";
import { hasHistory, record, untracked } from "../nn/tape.ts";
import type { Tensor } from "../tensor.ts";
import type { ForwardOptions, ForwardResult, RecurrentState } from "./forward_options.ts";
import { type ChunkExtras, PackedRun } from "./packed.ts";
import { recordSequence } from "./record_sequence.ts";
import { RunnerCache } from "./runner_cache.ts";

/** What the binding reads of its model. */
export interface BoundModel {
  /** The backend asked for. */
  readonly backend: BackendName;
  /** `I`. */
  readonly inputSize: number;
  /** `H`. */
  readonly hiddenSize: number;
  /** Cell states per hidden unit. */
  readonly k: number;
  /** Whether a recorded run fills the parameters' gradients. */
  readonly training: boolean;
  /** The gates' activation. */
  readonly recurrentActivation: RecurrentActivation;
  /** The parameters, in drawing order. */
  parameters(): Parameter[];
}

/**
 * The runner of one model and the fused paths of its `forward`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, zeros } from "../../mod.ts";
 * // Every LSTM holds one; its forward runs through it.
 * using lstm = new LSTM(2, 3, { backend: "js" });
 * assert.deepEqual((await lstm.forward(zeros([1, 2, 2]))).output.shape, [1, 2, 3]);
 * ```
 */
export class RunnerBinding {
  /** The cell as the backends see it; the built-in subclasses set theirs with `setVariant`. */
  variant: CellVariant = { kind: "lstm", k: 1, maxPooling: false };
  readonly #model: BoundModel;
  readonly #version: () => number;
  readonly #runner: RunnerCache;
  /** The parameters bound to the weights of the runner that holds them in place, if any. */
  #resident: {
    readonly runner: SequenceRunner;
    readonly group: ResidentGroup | DeviceGroup;
  } | null = null;

  /**
   * @param model The model bound.
   * @param version Its parameters' version: a new one compiles the weights again.
   */
  constructor(model: BoundModel, version: () => number) {
    this.#model = model;
    this.#version = version;
    this.#runner = new RunnerCache(
      () => this.#spec(),
      (spec) => selectBackend(model.backend).then((backend) => backend.compile(spec)),
    );
  }

  // Parameters are replaced, never written into: a new version (optimizer step, loadStateDict)
  // compiles the weights again; calls in flight finish on the runner they started with.
  /** The runner cache at the parameters' current version. */
  current(): RunnerCache {
    return this.#runner.at(this.#version());
  }

  /** Drops the runner; the next call compiles the cell again. */
  invalidate(): void {
    this.#runner.invalidate();
  }

  /** Drops the runner for good: later calls throw that `owner` was disposed. */
  dispose(owner: string): void {
    this.#runner.dispose(owner);
  }

  /**
   * When a webgpu runner holding the weights is about to be replaced (a parameter was assigned
   * since), the new one is compiled from the others' values, which are newer on the device: this
   * waits for their read-back, and gives a copy of the forward's arguments, read before waiting
   * (as every forward reads its inputs before it returns), to run again. `null` when there is
   * nothing to wait for.
   */
  settling(
    call: {
      x: Tensor;
      init: ForwardOptions | undefined;
      start: RecurrentState | null;
      lengths: Int32Array | null;
    },
  ): Promise<{ x: Tensor; init: ForwardOptions }> | null {
    const group = this.#resident?.group;
    if (!(group instanceof DeviceGroup) || group.usable) return null;
    this.#resident = null;
    const own = (value: Tensor): Tensor => {
      const data = { shape: [...value.shape], data: value.data.slice() };
      return hasHistory(value) ? record("copy", [data], [value], (grads) => grads)[0] : data;
    };
    const { start, lengths } = call;
    const init = {
      ...call.init,
      ...(start === null ? {} : { hidden: own(start.hidden), state: own(start.state) }),
      ...(lengths === null ? {} : { lengths: [...lengths] }),
    };
    const x = own(call.x);
    return group.sync().then(() => ({ x, init }));
  }

  /**
   * Runs `x` `(B, T, I)` from `start` in the backend's fused kernels: recorded when `recording`,
   * each sequence up to its `lengths` when given, with the opt-in `outputs` when asked.
   * `ownStart`: `start` was made for this call (no copy needed to read it later).
   */
  async forward(
    x: Tensor,
    start: RecurrentState,
    lengths: Int32Array | null,
    recording: boolean,
    outputs: SequenceExtras | undefined,
    ownStart = false,
  ): Promise<ForwardResult> {
    const [batch, seqLen] = x.shape;
    if (lengths !== null && lengths.some((length) => length < seqLen)) {
      // The plan copies x and the state now; one runner (one set of weights) runs every chunk.
      const packed = new PackedRun(x, start, lengths);
      return await this.current().pinned(async (runner) => {
        for (let chunk = packed.next(); chunk !== null; chunk = packed.next()) {
          packed.accept(
            await this.#runSequence(runner, chunk.x, chunk.start, recording, outputs),
          );
        }
        return packed.result();
      });
    }
    const runners = this.current();
    if (recording) {
      // The input as it is now, before waiting for the runner: a forward reads its arguments
      // when called, and the caller may change them once it has the promise.
      const copy = (value: Tensor): Tensor => ({ shape: value.shape, data: value.data.slice() });
      const own = ownStart ? start : { hidden: copy(start.hidden), state: copy(start.state) };
      const ownX = copy(x);
      return await this.#runSequence(await runners.runner(), ownX, own, true, outputs, {
        x,
        hidden: start.hidden,
        state: start.state,
      });
    }
    const result = await runners.run({
      batch,
      seqLen,
      x: x.data,
      hidden: start.hidden.data,
      state: start.state.data,
      ...(ownStart ? { ownsState: true } : {}),
      ...(outputs === undefined ? {} : { outputs }),
    });
    return this.#results(batch, seqLen, result);
  }

  /**
   * The forward of `x` from `start` that keeps what LRP's relevance pass needs, on the model's
   * runner, with that pass; `null` when the backend has none for this cell.
   */
  async relevance(x: Tensor, start: RecurrentState): Promise<RelevanceStep | null> {
    const runner = await this.current().runner();
    if (runner.runRelevance === undefined) return null;
    const [batch, seqLen] = x.shape;
    return await runner.runRelevance({
      batch,
      seqLen,
      x: x.data,
      hidden: start.hidden.data,
      state: start.state.data,
    });
  }

  /** The parameters in the layout the backends take. */
  #spec(): CellSpec {
    const model = this.#model;
    const values = Object.fromEntries(model.parameters().map(({ name, value }) => [name, value]));
    return {
      variant: { ...this.variant, recurrentActivation: model.recurrentActivation },
      inputSize: model.inputSize,
      hiddenSize: model.hiddenSize,
      params: cellParameters(values),
    };
  }

  /**
   * Runs `x` from `start` on `runner`, recorded when `recording` (with `sources` as the
   * history's parents: the caller's tensors when `x` and `start` are copies of them), with the
   * opt-in `outputs` when given.
   */
  async #runSequence(
    runner: SequenceRunner,
    x: Tensor,
    start: RecurrentState,
    recording: boolean,
    outputs: SequenceExtras | undefined,
    sources: { x: Tensor; hidden: Tensor; state: Tensor } = { x, ...start },
  ): Promise<ForwardResult> {
    const [batch, seqLen] = x.shape;
    const input = { batch, seqLen, x: x.data, hidden: start.hidden.data, state: start.state.data };
    const asked = outputs === undefined ? input : { ...input, outputs };
    if (!recording) return this.#results(batch, seqLen, await runner.run(asked));
    const training = this.#model.training;
    const [output, hidden, state] = await recordSequence(runner, input, {
      parameters: training ? this.#model.parameters() : [],
      ...sources,
    });
    if (training) this.#bindResident(runner);
    // A training step records no opt-in outputs: one more inference run gives them.
    const extras = outputs === undefined
      ? {}
      : this.#extras(batch, seqLen, await runner.run(asked));
    return { output, hidden, state, ...extras };
  }

  /**
   * Binds the parameters to `runner`'s weights when it updates them in place, so that an
   * optimizer steps them there: the runner stays this layer's, and `p.value` reads them back.
   */
  #bindResident(runner: SequenceRunner): void {
    const { resident, device } = runner;
    if ((resident ?? device) === undefined || this.#resident?.runner === runner) return;
    const version = this.#version;
    if (!this.#runner.current(runner, version())) return;
    const model = this.#model;
    const byName = new Map(model.parameters().map((parameter) => [parameter.name, parameter]));
    const sizes = {
      variant: this.variant,
      inputSize: model.inputSize,
      hiddenSize: model.hiddenSize,
    };
    const parameters = parameterSizes(sizes).map(([name]) => byName.get(name)!);
    const current = () => this.#runner.current(runner, version());
    const stepped = () => this.#runner.adopt(version());
    const group = resident === undefined
      ? new DeviceGroup(parameters, device!, current, stepped)
      : new ResidentGroup(parameters, resident, current, stepped);
    this.#resident = { runner, group };
  }

  #results(batch: number, seqLen: number, result: SequenceOutput): ForwardResult {
    const H = this.#model.hiddenSize;
    return {
      output: untracked({ shape: [batch, seqLen, H], data: result.output }),
      hidden: untracked({ shape: [1, batch, H], data: result.hidden }),
      state: untracked({ shape: [this.#model.k, batch, H], data: result.state }),
      ...this.#extras(batch, seqLen, result),
    };
  }

  /** The opt-in outputs of a backend result, as tensors. */
  #extras(batch: number, seqLen: number, result: SequenceOutput): ChunkExtras {
    const H = this.#model.hiddenSize;
    return {
      ...(result.attention === undefined
        ? {}
        : { attention: { shape: [batch, seqLen, H, this.#model.k], data: result.attention } }),
      ...(result.lanes === undefined
        ? {}
        : { lanes: { shape: [batch, seqLen, H], data: result.lanes } }),
    };
  }
}

/**
 * The backends' view of parameters named as in a PyTorch `state_dict` (`i2h.weight`, `i2h.bias`,
 * `h2h.weight`, `h2h.bias`, and `i2a.*` when present). Other entries of `record` are ignored; the
 * arrays are shared, not copied.
 *
 * @example
 * ```ts
 * import { cellParameters } from "./runner_binding.ts";
 * import { LSTM } from "../../mod.ts";
 * const params = cellParameters(new LSTM(3, 4, { seed: 1 }).stateDict());
 * ```
 */
export function cellParameters(record: Record<string, Tensor>): CellParameters {
  return {
    i2hWeight: record["i2h.weight"].data,
    i2hBias: record["i2h.bias"].data,
    h2hWeight: record["h2h.weight"].data,
    h2hBias: record["h2h.bias"].data,
    i2aWeight: record["i2a.weight"]?.data ?? null,
    i2aBias: record["i2a.bias"]?.data ?? null,
  };
}
