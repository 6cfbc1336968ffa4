/**
 * Activation layers, for `Sequential`: `ReLU`, `Tanh`, `Sigmoid`, `Softmax` and `LogSoftmax`,
 * each the functional op of the same name as a layer without parameters (as `nn.ReLU`, ...).
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { logSoftmax, relu, sigmoid, softmax, tanh } from "./functional.ts";
import { Module } from "./module.ts";
import type { TrackedTensor } from "./tape.ts";

/** Runs `op` as a layer's `forward`: asynchronous like every layer, errors as rejections. */
function apply(op: (input: Tensor) => TrackedTensor, x: Tensor): Promise<TrackedTensor> {
  return Promise.resolve().then(() => op(x));
}

/**
 * `max(0, x)` elementwise, as `nn.ReLU`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReLU, tensor } from "../../mod.ts";
 * assert.deepEqual([...(await new ReLU().forward(tensor([-2, 3], [2]))).data], [0, 3]);
 * ```
 */
export class ReLU extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ReLU } from "../../mod.ts";
   * assert.deepEqual(new ReLU().parameters(), []);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * `relu(x)`, any shape.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ReLU, tensor } from "../../mod.ts";
   * assert.deepEqual((await new ReLU().forward(tensor([1, -1], [1, 2]))).shape, [1, 2]);
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return apply(relu, x);
  }
}

/**
 * `tanh(x)` elementwise, as `nn.Tanh`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tanh, tensor } from "../../mod.ts";
 * assert.deepEqual([...(await new Tanh().forward(tensor([0], [1]))).data], [0]);
 * ```
 */
export class Tanh extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tanh } from "../../mod.ts";
   * assert.deepEqual(new Tanh().parameters(), []);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * `tanh(x)`, any shape.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tanh, tensor } from "../../mod.ts";
   * assert.ok((await new Tanh().forward(tensor([9], [1]))).data[0] < 1);
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return apply(tanh, x);
  }
}

/**
 * `1 / (1 + exp(−x))` elementwise, as `nn.Sigmoid`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Sigmoid, tensor } from "../../mod.ts";
 * assert.deepEqual([...(await new Sigmoid().forward(tensor([0], [1]))).data], [0.5]);
 * ```
 */
export class Sigmoid extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Sigmoid } from "../../mod.ts";
   * assert.deepEqual(new Sigmoid().parameters(), []);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * `sigmoid(x)`, any shape.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Sigmoid, tensor } from "../../mod.ts";
   * assert.ok((await new Sigmoid().forward(tensor([9], [1]))).data[0] > 0.99);
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return apply(sigmoid, x);
  }
}

/**
 * Softmax over the last axis, as `nn.Softmax(dim=-1)`: probabilities per step or per sequence.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Softmax, tensor } from "../../mod.ts";
 * assert.deepEqual([...(await new Softmax().forward(tensor([3, 3], [1, 2]))).data], [0.5, 0.5]);
 * ```
 */
export class Softmax extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Softmax } from "../../mod.ts";
   * assert.deepEqual(new Softmax().parameters(), []);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * `softmax(x)` over the last axis.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Softmax, tensor } from "../../mod.ts";
   * const p = await new Softmax().forward(tensor([1, 2, 3], [1, 3]));
   * assert.ok(Math.abs(p.data.reduce((a, b) => a + b) - 1) < 1e-6);
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return apply(softmax, x);
  }
}

/**
 * Log-softmax over the last axis, as `nn.LogSoftmax(dim=-1)`: log-probabilities for `nllLoss`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogSoftmax, tensor } from "../../mod.ts";
 * const logp = await new LogSoftmax().forward(tensor([0, 0], [1, 2]));
 * assert.ok(Math.abs(logp.data[0] - Math.log(0.5)) < 1e-7);
 * ```
 */
export class LogSoftmax extends Module {
  /**
   * No parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LogSoftmax } from "../../mod.ts";
   * assert.deepEqual(new LogSoftmax().parameters(), []);
   * ```
   */
  protected initialParameters(): Record<string, Tensor> {
    return {};
  }

  /**
   * `logSoftmax(x)` over the last axis.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LogSoftmax, tensor } from "../../mod.ts";
   * assert.ok((await new LogSoftmax().forward(tensor([1, 2], [1, 2]))).data.every((v) => v < 0));
   * ```
   */
  forward(x: Tensor): Promise<TrackedTensor> {
    return apply(logSoftmax, x);
  }
}
