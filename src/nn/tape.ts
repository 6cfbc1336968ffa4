/**
 * The backward tape. A tensor computed from something that records (a layer in training mode, a
 * tensor from {@linkcode requiresGrad}) carries its history: an edge to the node that made it.
 * `await loss.backward()` walks the nodes in reverse topological order and adds each parameter's
 * gradient to its `grad`, as PyTorch's autograd does. A node frees its activations after its
 * backward, so a second `backward()` through the same graph is an error.
 *
 * Every tensor that layers and functional ops return is a {@linkcode TrackedTensor}: a plain
 * `Tensor` (`{ shape, data }`) plus `requiresGrad`, `backward()` and `detach()`. One without
 * history costs nothing extra; its `backward()` explains what to record.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { checkTensor, sizeOf, type Tensor } from "../tensor.ts";
import type { Parameter } from "./parameter.ts";

/** A gradient, or `null` where none flows. */
export type Gradient = Float32Array | null;

/** Maps the gradients of a node's outputs to the gradients of its parents (in order). */
export type BackwardFunction = (
  grads: readonly Gradient[],
) => readonly Gradient[] | Promise<readonly Gradient[]>;

/** One output of a node: what a tensor with history points to. */
export interface Edge {
  readonly node: Node;
  readonly index: number;
}

/** A recorded operation (or a leaf, which accumulates instead of propagating). */
export interface Node {
  readonly name: string;
  readonly parents: readonly (Edge | null)[];
  readonly outputs: number;
  /** `null` once run: the activations it closed over are freed. */
  backward: BackwardFunction | null;
  /** Leaves only: stores the gradient that reached them. */
  readonly accumulate?: (grad: Float32Array) => void;
}

const history = new WeakMap<object, Edge>();
const parameterLeaves = new WeakMap<Parameter, Edge>();

/**
 * A tensor as layers and functional ops return it: `{ shape, data }`, and when it carries history
 * (`requiresGrad`), the means to back-propagate from it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, mseLoss, tensor } from "../../mod.ts";
 * const linear = new Linear(2, 1, { seed: 1 }).train();
 * const y = await linear.forward(tensor([1, 2], [1, 2]));
 * const loss = mseLoss(y, tensor([0], [1, 1]));
 * assert.equal(loss.requiresGrad, true);
 * await loss.backward();
 * assert.ok(linear.parameters()[0].grad !== null);
 * ```
 */
export interface TrackedTensor extends Tensor {
  /** Whether this tensor carries history, so that `backward()` reaches something. */
  readonly requiresGrad: boolean;
  /**
   * Back-propagates from this scalar: adds d this / d p to `p.grad` of every parameter (and leaf
   * from {@linkcode requiresGrad}) it was computed from.
   *
   * @throws {RangeError} If the tensor has more than one element.
   * @throws {TypeError} If it has no history.
   * @throws {Error} On a second `backward()` through the same graph.
   */
  backward(): Promise<void>;
  /** The same values without history: gradients stop here (truncated BPTT). */
  detach(): TrackedTensor;
}

/** A leaf made by {@linkcode requiresGrad}: `backward()` fills its `grad`. */
export interface LeafTensor extends TrackedTensor {
  /** d loss / d this tensor, accumulated; `null` before the first `backward()`. */
  grad: Tensor | null;
}

// Tracked tensors stay plain `{ shape, data }` objects: the methods are non-enumerable, so a
// result still compares equal to a plain tensor (assert.deepEqual) and spreads like one.
const methods: PropertyDescriptorMap = {
  requiresGrad: {
    get(this: Tensor): boolean {
      return history.has(this);
    },
  },
  backward: {
    value(this: Tensor): Promise<void> {
      return runBackward(this);
    },
  },
  detach: {
    value(this: Tensor): TrackedTensor {
      return tracked(this.shape, this.data, null);
    },
  },
};

function tracked(shape: readonly number[], data: Float32Array, edge: Edge | null): TrackedTensor {
  const value = Object.defineProperties({ shape, data }, methods) as TrackedTensor;
  if (edge !== null) history.set(value, edge);
  return value;
}

function leaf(value: Tensor): LeafTensor {
  const result = Object.defineProperty(tracked(value.shape, value.data, null), "grad", {
    value: null,
    writable: true,
  }) as LeafTensor;
  history.set(result, {
    node: {
      name: "requiresGrad",
      parents: [],
      outputs: 1,
      backward: null,
      accumulate: (grad) => {
        result.grad = accumulated(result.grad, result.shape, grad);
      },
    },
    index: 0,
  });
  return result;
}

function accumulated(
  previous: Tensor | null,
  shape: readonly number[],
  grad: Float32Array,
): Tensor {
  if (previous === null) return { shape: [...shape], data: grad.slice() };
  const sum = new Float32Array(grad.length);
  for (let i = 0; i < sum.length; i++) sum[i] = previous.data[i] + grad[i];
  return { shape: [...shape], data: sum };
}

/**
 * The history of a tensor: the edge to the node that computed it, or `null`.
 *
 * @example
 * ```ts
 * import { edgeOf } from "./tape.ts";
 * import { tensor } from "../tensor.ts";
 * edgeOf(tensor([1], [1])); // null
 * ```
 */
export function edgeOf(value: Tensor): Edge | null {
  return history.get(value) ?? null;
}

/**
 * Whether a tensor carries history (from a recording layer or {@linkcode requiresGrad}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasHistory, requiresGrad, tensor } from "../../mod.ts";
 * assert.equal(hasHistory(tensor([1], [1])), false);
 * assert.equal(hasHistory(requiresGrad(tensor([1], [1]))), true);
 * ```
 */
export function hasHistory(value: Tensor): boolean {
  return history.has(value);
}

/**
 * A leaf tensor whose gradient `backward()` computes, like `x.requires_grad_()` in PyTorch: pass
 * it to a layer (the input `x`, an initial `hidden` or `state`) and read `leaf.grad` afterwards.
 * The data is shared, not copied.
 *
 * @example Saliency: d loss / d input
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, requiresGrad, sum, tensor } from "../../mod.ts";
 * const x = requiresGrad(tensor([1, 2], [1, 2]));
 * const linear = new Linear(2, 1, { seed: 3 });
 * await sum(await linear.forward(x)).backward();
 * assert.deepEqual(x.grad?.data, linear.parameters()[0].value.data);
 * ```
 */
export function requiresGrad(value: Tensor): LeafTensor {
  checkTensor("value", value);
  return leaf(value);
}

/**
 * The same values without history, so that gradients stop there: the final state of one batch
 * fed to the next (truncated backpropagation through time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detach, requiresGrad, tensor } from "../../mod.ts";
 * assert.equal(detach(requiresGrad(tensor([1], [1]))).requiresGrad, false);
 * ```
 */
export function detach(value: Tensor): TrackedTensor {
  checkTensor("value", value);
  return tracked(value.shape, value.data, null);
}

/**
 * The leaf edge of a parameter: gradients reaching it are added to `parameter.grad`.
 *
 * @example
 * ```ts
 * import { parameterEdge } from "./tape.ts";
 * import { Parameter, tensor } from "../../mod.ts";
 * const edge = parameterEdge(new Parameter("w", tensor([1], [1])));
 * ```
 */
export function parameterEdge(parameter: Parameter): Edge {
  let edge = parameterLeaves.get(parameter);
  if (edge === undefined) {
    edge = {
      node: {
        name: `parameter "${parameter.name}"`,
        parents: [],
        outputs: 1,
        backward: null,
        accumulate: (grad) => {
          parameter.grad = accumulated(parameter.grad, parameter.value.shape, grad);
        },
      },
      index: 0,
    };
    parameterLeaves.set(parameter, edge);
  }
  return edge;
}

/**
 * A parameter's value as a tensor carrying the parameter's leaf history: an op recorded from it
 * adds its gradient to `parameter.grad`, as a PyTorch `nn.Parameter` does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parameterTensor } from "./tape.ts";
 * import { mul, Parameter, sum, tensor } from "../../mod.ts";
 * const weight = new Parameter("w", tensor([1, 2], [2]));
 * await sum(mul(parameterTensor(weight), tensor([3, 4], [2]))).backward();
 * assert.deepEqual([...weight.grad!.data], [3, 4]);
 * ```
 */
export function parameterTensor(parameter: Parameter): TrackedTensor {
  const { shape, data } = parameter.value;
  return tracked(shape, data, parameterEdge(parameter));
}

/**
 * Wraps results in tracked tensors; when any parent has history, records one node whose
 * `backward` maps the outputs' gradients to the parents' gradients.
 *
 * @example Record `y = 2·x`
 * ```ts
 * import { record, requiresGrad } from "./tape.ts";
 * import { tensor } from "../tensor.ts";
 * const x = requiresGrad(tensor([1, 2], [2]));
 * const [y] = record("double", [{ shape: [2], data: new Float32Array([2, 4]) }], [x], ([g]) => [
 *   g === null ? null : g.map((v) => 2 * v),
 * ]);
 * ```
 */
export function record(
  name: string,
  outputs: readonly Tensor[],
  parents: readonly (Tensor | Edge | null)[],
  backward: BackwardFunction,
): TrackedTensor[] {
  const edges = parents.map((parent) =>
    parent === null ? null : "node" in parent ? parent : edgeOf(parent)
  );
  const node: Node | null = edges.some((edge) => edge !== null)
    ? { name, parents: edges, outputs: outputs.length, backward }
    : null;
  return outputs.map((output, index) =>
    tracked(output.shape, output.data, node === null ? null : { node, index })
  );
}

/** Wraps a result without history. */
export function untracked(value: Tensor): TrackedTensor {
  return tracked(value.shape, value.data, null);
}

async function runBackward(root: Tensor): Promise<void> {
  const rootEdge = edgeOf(root);
  if (rootEdge === null) {
    throw new TypeError(
      "backward() needs a tensor with history, but this one was computed from nothing that " +
        "records: call train() on the layers (or wrap the input in requiresGrad) before forward",
    );
  }
  if (root.data.length !== 1) {
    throw new RangeError(
      `backward() needs a scalar (one element), got shape ${describe(root.shape)} (${
        sizeOf(root.shape)
      } elements): reduce it first, e.g. with a loss or sum()`,
    );
  }
  const order = topologicalOrder(rootEdge.node);
  const grads = new Map<Node, Gradient[]>();
  const seed: Gradient[] = new Array(rootEdge.node.outputs).fill(null);
  seed[rootEdge.index] = new Float32Array([1]);
  grads.set(rootEdge.node, seed);
  for (const node of order) {
    const incoming = grads.get(node);
    grads.delete(node);
    if (node.accumulate !== undefined) {
      if (incoming?.[0]) node.accumulate(incoming[0]);
      continue;
    }
    const backward = node.backward!;
    node.backward = null;
    if (incoming === undefined || incoming.every((grad) => grad === null)) continue;
    const outgoing = await backward(incoming);
    node.parents.forEach((edge, i) => {
      const grad = outgoing[i];
      if (edge === null || grad === null || grad === undefined) return;
      const slots = grads.get(edge.node) ?? new Array(edge.node.outputs).fill(null);
      const previous = slots[edge.index];
      if (previous === null) {
        slots[edge.index] = grad;
      } else {
        const sum = new Float32Array(grad.length);
        for (let j = 0; j < sum.length; j++) sum[j] = previous[j] + grad[j];
        slots[edge.index] = sum;
      }
      grads.set(edge.node, slots);
    });
  }
}

/** Nodes reachable from `root`, every node before its parents. */
function topologicalOrder(root: Node): Node[] {
  const visited = new Set<Node>();
  const postOrder: Node[] = [];
  const stack: { node: Node; next: number }[] = [{ node: root, next: 0 }];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.node.accumulate === undefined && top.node.backward === null) {
      throw new Error(
        `backward() through the same graph a second time: ${top.node.name} freed its ` +
          "activations after the first backward(). Run the forward again for a new graph",
      );
    }
    if (top.next < top.node.parents.length) {
      const parent = top.node.parents[top.next++]?.node;
      if (parent !== undefined && !visited.has(parent)) {
        visited.add(parent);
        stack.push({ node: parent, next: 0 });
      }
    } else {
      postOrder.push(top.node);
      stack.pop();
    }
  }
  return postOrder.reverse();
}
