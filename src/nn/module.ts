/**
 * `Module`: what every layer shares: named parameters (drawn on first use), `stateDict()` /
 * `loadStateDict()`, and the training switch.
 *
 * @module
 */

import type { BackendName } from "../contract/mod.ts";
import { checkShape, describe } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { syncParameters } from "./device_group.ts";
import { Parameter } from "./parameter.ts";
import { parameterTensor, type TrackedTensor, untracked } from "./tape.ts";

/**
 * The base of every layer. Subclasses say how to draw their initial parameters; the base keeps
 * them as stable {@linkcode Parameter} objects. In training mode (`train()`) a layer's `forward`
 * records for `backward()`; in evaluation mode (the default, `eval()`) it records nothing for its
 * parameters and costs nothing extra, but still passes gradients on to an input that carries
 * history (a frozen layer inside a trained network, or saliency).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear } from "../../mod.ts";
 * const layer = new Linear(3, 2, { seed: 1 });
 * assert.equal(layer.training, false);
 * assert.equal(layer.train().training, true);
 * assert.equal(layer.parameters()[0], layer.parameters()[0]); // the same object every call
 * ```
 */
export abstract class Module {
  #training = false;
  #parameters: Map<string, Parameter> | null = null;

  /**
   * The initial parameters by `stateDict` key, in order; called once, on first use (subclasses
   * may set their sizes after the base constructor has run).
   *
   * @example A layer with one parameter
   * ```ts
   * import assert from "node:assert/strict";
   * import { Module, type Tensor, tensor } from "../../mod.ts";
   * class Scale extends Module {
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { scale: tensor([2], [1]) };
   *   }
   *   get factor(): number {
   *     return this.parameter("scale").data[0];
   *   }
   *   get version(): number {
   *     return this.parametersVersion();
   *   }
   * }
   * const layer = new Scale();
   * assert.equal(layer.factor, 2);
   * assert.equal(layer.parameters()[0].backend, null); // parameterBackend(): runs anywhere
   * layer.loadStateDict({ scale: tensor([3], [1]) });
   * assert.deepEqual([layer.factor, layer.version], [3, 1]);
   * ```
   */
  protected abstract initialParameters(): Record<string, Tensor>;

  /**
   * The layers inside this one, by name (`Stacked`: `"0"`, `"1"`, ...). Their parameters follow
   * this layer's own in `parameters()`, under `name.` in `stateDict()`, and `train()` reaches
   * them. None by default.
   *
   * @example A layer that holds another
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear, Module, type Tensor, tensor } from "../../mod.ts";
   * class Scaled extends Module {
   *   readonly inner = new Linear(2, 1);
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { scale: tensor([2], [1]) };
   *   }
   *   protected override children(): readonly (readonly [string, Module])[] {
   *     return [["inner", this.inner]];
   *   }
   * }
   * const layer = new Scaled();
   * assert.deepEqual(Object.keys(layer.stateDict()), ["scale", "inner.weight", "inner.bias"]);
   * assert.equal(layer.train().inner.training, true);
   * ```
   */
  protected children(): readonly (readonly [string, Module])[] {
    return [];
  }

  /** Every parameter by its `stateDict` key, children's under their prefix. */
  #named(): Map<string, Parameter> {
    const named = new Map(this.#parameterMap());
    for (const [prefix, child] of this.children()) {
      for (const [name, parameter] of child.#named()) named.set(`${prefix}.${name}`, parameter);
    }
    return named;
  }

  /**
   * The backend the parameters live on; `null` for layers that run anywhere.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Module, type Tensor, tensor } from "../../mod.ts";
   * class Scale extends Module {
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { scale: tensor([2], [1]) };
   *   }
   *   get factor(): number {
   *     return this.parameter("scale").data[0];
   *   }
   *   get version(): number {
   *     return this.parametersVersion();
   *   }
   * }
   * const layer = new Scale();
   * assert.equal(layer.factor, 2);
   * assert.equal(layer.parameters()[0].backend, null); // parameterBackend(): runs anywhere
   * layer.loadStateDict({ scale: tensor([3], [1]) });
   * assert.deepEqual([layer.factor, layer.version], [3, 1]);
   * ```
   */
  protected parameterBackend(): BackendName | null {
    return null;
  }

  #parameterMap(): Map<string, Parameter> {
    if (this.#parameters === null) {
      const backend = this.parameterBackend();
      this.#parameters = new Map(
        Object.entries(this.initialParameters()).map((
          [name, value],
        ) => [name, new Parameter(name, value, backend)]),
      );
    }
    return this.#parameters;
  }

  /** Whether `forward` records for `backward()`. */
  get training(): boolean {
    return this.#training;
  }

  /**
   * Switches training mode on (or off with `false`), as PyTorch's `module.train(mode)`.
   *
   * @returns This layer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM } from "../../mod.ts";
   * const lstm = new LSTM(3, 2).train();
   * assert.equal(lstm.training, true);
   * assert.equal(lstm.train(false).training, false);
   * ```
   */
  train(mode = true): this {
    if (typeof mode !== "boolean") {
      throw new TypeError(`mode must be a boolean, got ${describe(mode)}`);
    }
    this.#training = mode;
    for (const [, child] of this.children()) child.train(mode);
    return this;
  }

  /**
   * Switches training mode off: `forward` records nothing. Returns this layer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear } from "../../mod.ts";
   * const layer = new Linear(3, 2).train();
   * assert.equal(layer.eval(), layer);
   * assert.equal(layer.training, false);
   * ```
   */
  eval(): this {
    return this.train(false);
  }

  /**
   * The trainable parameters, named by their `stateDict` keys; the same objects on every call.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, LSTM } from "../../mod.ts";
   * const lstm = new LSTM(3, 4, { seed: 1 });
   * const opt = new Adam(lstm.parameters(), { lr: 1e-3 });
   * assert.deepEqual(lstm.parameters().map((p) => p.name), Object.keys(lstm.stateDict()));
   * assert.equal(opt.lr, 1e-3);
   * ```
   */
  parameters(): Parameter[] {
    return [...this.#named().values()];
  }

  /**
   * Reads back the parameters (values and gradients) of this layer and its children that live on
   * the webgpu device, in one read-back per recurrent layer: afterwards `p.value`, `p.grad` and
   * `stateDict()` read synchronously until the next optimizer step or backward. WebGPU reads
   * buffers back only asynchronously; on the other backends this does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Linear } from "../../mod.ts";
   * const layer = new Linear(2, 1, { seed: 1 });
   * await layer.sync(); // nothing on a device
   * assert.equal(layer.stateDict().weight.data.length, 2);
   * ```
   */
  sync(): Promise<void> {
    return syncParameters(this.parameters());
  }

  /**
   * The value of the parameter called `name` (read-only by convention).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Module, type Tensor, tensor } from "../../mod.ts";
   * class Scale extends Module {
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { scale: tensor([2], [1]) };
   *   }
   *   get factor(): number {
   *     return this.parameter("scale").data[0];
   *   }
   *   get version(): number {
   *     return this.parametersVersion();
   *   }
   * }
   * const layer = new Scale();
   * assert.equal(layer.factor, 2);
   * assert.equal(layer.parameters()[0].backend, null); // parameterBackend(): runs anywhere
   * layer.loadStateDict({ scale: tensor([3], [1]) });
   * assert.deepEqual([layer.factor, layer.version], [3, 1]);
   * ```
   */
  protected parameter(name: string): Tensor {
    return this.#parameterMap().get(name)!.value;
  }

  /**
   * The parameter called `name` as an input of the differentiable ops: in training mode it carries
   * the parameter's history, so a loss computed from it fills the parameter's `grad`; in
   * evaluation mode it has none, and the parameter stays frozen.
   *
   * @example A learned gain, trained through `mul`
   * ```ts
   * import assert from "node:assert/strict";
   * import { hasHistory, Module, mul, sum, type Tensor, tensor } from "../../mod.ts";
   * class Gain extends Module {
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { gain: tensor([2], [1]) };
   *   }
   *   forward(x: Tensor): Tensor {
   *     return mul(x, this.parameterTensor("gain"));
   *   }
   * }
   * const layer = new Gain().train();
   * await sum(layer.forward(tensor([5], [1]))).backward();
   * assert.deepEqual([...layer.parameters()[0].grad!.data], [5]);
   * assert.equal(hasHistory(new Gain().forward(tensor([5], [1]))), false); // eval: frozen
   * ```
   */
  protected parameterTensor(name: string): TrackedTensor {
    const parameter = this.#parameterMap().get(name)!;
    return this.training ? parameterTensor(parameter) : untracked(parameter.value);
  }

  /**
   * Grows whenever a parameter's value is replaced (optimizer steps, `loadStateDict`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Module, type Tensor, tensor } from "../../mod.ts";
   * class Scale extends Module {
   *   protected override initialParameters(): Record<string, Tensor> {
   *     return { scale: tensor([2], [1]) };
   *   }
   *   get factor(): number {
   *     return this.parameter("scale").data[0];
   *   }
   *   get version(): number {
   *     return this.parametersVersion();
   *   }
   * }
   * const layer = new Scale();
   * assert.equal(layer.factor, 2);
   * assert.equal(layer.parameters()[0].backend, null); // parameterBackend(): runs anywhere
   * layer.loadStateDict({ scale: tensor([3], [1]) });
   * assert.deepEqual([layer.factor, layer.version], [3, 1]);
   * ```
   */
  protected parametersVersion(): number {
    let version = 0;
    for (const parameter of this.#parameterMap().values()) version += parameter.version;
    return version;
  }

  /**
   * The parameters by name, as copies.
   *
   * @example Save the weights as safetensors
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadSafetensors, LSTM, saveSafetensors } from "../../mod.ts";
   * const lstm = new LSTM(3, 4, { seed: 1 });
   * const bytes = saveSafetensors(lstm.stateDict());
   * assert.deepEqual(loadSafetensors(bytes), lstm.stateDict());
   * ```
   */
  stateDict(): Record<string, Tensor> {
    const record: Record<string, Tensor> = {};
    for (const [name, { value }] of this.#named()) {
      record[name] = { shape: [...value.shape], data: value.data.slice() };
    }
    return record;
  }

  /**
   * Sets every parameter to a copy of the tensor of the same name, for instance a PyTorch
   * `state_dict` saved as safetensors. The record must hold exactly this layer's parameters. The
   * `Parameter` objects stay the same, so optimizers holding them keep working.
   *
   * @throws {RangeError} On missing, extra or misshaped tensors; the layer is then unchanged.
   *
   * @example Load weights saved from PyTorch
   * ```ts ignore
   * import { ArrayLSTM, loadSafetensors } from "../../mod.ts";
   * const model = new ArrayLSTM(10, 128, 4);
   * model.loadStateDict(loadSafetensors(await Deno.readFile("model.safetensors")));
   * ```
   *
   * @example Copy the weights of one model into another
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArrayLSTM } from "../../mod.ts";
   * const a = new ArrayLSTM(3, 2, 4, { seed: 1 }), b = new ArrayLSTM(3, 2, 4, { seed: 2 });
   * b.loadStateDict(a.stateDict());
   * assert.deepEqual(b.stateDict(), a.stateDict());
   * assert.throws(() => b.loadStateDict({}), RangeError); // missing tensors: b unchanged
   * ```
   */
  loadStateDict(record: Record<string, Tensor>): void {
    if (typeof record !== "object" || record === null) {
      throw new TypeError(`record must be an object of tensors, got ${describe(record)}`);
    }
    const parameters = this.#named();
    const names = [...parameters.keys()];
    const missing = names.filter((name) => !Object.hasOwn(record, name));
    const extra = Object.keys(record).filter((name) => !parameters.has(name));
    if (missing.length > 0 || extra.length > 0) {
      throw new RangeError(
        `record does not match this ${this.constructor.name}'s parameters: ` +
          [
            missing.length > 0 ? `missing ${missing.map(describe).join(", ")}` : "",
            extra.length > 0 ? `unexpected ${extra.map(describe).join(", ")}` : "",
          ].filter(Boolean).join("; ") + `; expected exactly ${names.join(", ")}` +
          foreignHint(extra),
      );
    }
    for (const [name, { value }] of parameters) {
      checkTensor(`record["${name}"]`, record[name]);
      checkShape(`record["${name}"]`, record[name].shape, value.shape, name);
    }
    for (const [name, parameter] of parameters) {
      parameter.value = { shape: parameter.value.shape, data: record[name].data.slice() };
    }
  }
}

/** What to use instead when a record's names are torch.nn's or Keras'. */
function foreignHint(extra: readonly string[]): string {
  if (extra.some((name) => /^(weight|bias)_(ih|hh)_l\d+(_reverse)?$/.test(name))) {
    return ". These are torch.nn.LSTM/GRU/RNN names (weight_ih_l0, ...): build the network " +
      "with fromTorch(record, { mode, numLayers, bidirectional })";
  }
  if (extra.some((name) => /(^|[./])(kernel|recurrent_kernel)(:0)?$/.test(name))) {
    return ". These are Keras names (kernel, recurrent_kernel): import the layer with " +
      "importKerasLSTM({ kernel, recurrentKernel, bias }) or importKerasDense({ kernel, bias })";
  }
  return "";
}
