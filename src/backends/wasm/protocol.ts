/**
 * The messages between the WASM backend's main thread (`thread.ts`) and its workers
 * (`worker.ts`): one request in and one reply out per call, and the buffers a message may
 * transfer instead of copying.
 *
 * @module
 */

import type {
  CellSpec,
  EpsilonRule,
  LayerRelevance,
  SequenceInput,
  SequenceOutput,
} from "../../contract/mod.ts";
import type { WasmFlavor } from "./bindings.ts";
import type { SliceGradients, SliceInputGradients } from "./train_kernel.ts";

/**
 * The buffers of `arrays` that a message can transfer instead of copying, each once (views of one
 * buffer share it): a `SharedArrayBuffer` is shared between threads already, never transferred.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { transferable } from "./protocol.ts";
 * const owned = new Float32Array(2);
 * const shared = new Float32Array(new SharedArrayBuffer(8));
 * assert.deepEqual(transferable([owned, shared, owned.subarray(1)]), [owned.buffer]);
 * ```
 */
export function transferable(
  arrays: readonly (Float32Array | Int32Array | undefined)[],
): ArrayBuffer[] {
  const buffers = arrays.map((array) => array?.buffer)
    .filter((buffer): buffer is ArrayBuffer => buffer instanceof ArrayBuffer);
  return [...new Set(buffers)];
}

/**
 * A message to the worker: pack a cell into one build of the module (once), run a batch slice, run
 * its part of the hidden units of a whole call (`share`, see `shared_units.ts`), or
 * train on one: a recording forward tagged `step`, and the backward of a step (with its input, to
 * run the forward again if another one ran since); or the relevance pass of a step whose forward
 * kept its `candidates`; or take new weights (an optimizer step).
 */
export type WorkerRequest =
  | {
    readonly type: "compile";
    readonly id: number;
    readonly spec: CellSpec;
    readonly flavor: WasmFlavor;
  }
  | { readonly type: "run"; readonly id: number; readonly input: SequenceInput }
  | {
    readonly type: "share";
    readonly id: number;
    readonly input: SequenceInput;
    readonly buffer: SharedArrayBuffer;
    readonly part: number;
    readonly parts: number;
  }
  | {
    readonly type: "forward";
    readonly id: number;
    readonly step: number;
    readonly input: SequenceInput;
    readonly candidates: boolean;
    /** A buffer for the results (`scratch.ts`), or `null`: the worker makes one. */
    readonly scratch: ArrayBuffer | null;
  }
  | { readonly type: "weights"; readonly id: number; readonly params: Float32Array }
  | {
    readonly type: "backward";
    readonly id: number;
    readonly step: number;
    /** `null` when the worker's last forward was this step's: its trainer holds the activations. */
    readonly input: SequenceInput | null;
    /** Views of `scratch`, or of their own buffers. */
    readonly grads: SliceGradients;
    /** A buffer for the results (it may hold `grads`, which are read first), or `null`. */
    readonly scratch: ArrayBuffer | null;
  }
  | {
    readonly type: "relevance";
    readonly id: number;
    readonly step: number;
    readonly input: SequenceInput;
    readonly outputRelevance: Float32Array;
    readonly rule: EpsilonRule;
  };

/** What a worker answers with. */
export type WorkerResult = SequenceOutput | SliceInputGradients | LayerRelevance | null;

/** The worker's answer to the request with the same `id`. */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly result: WorkerResult }
  | { readonly id: number; readonly ok: false; readonly name: string; readonly message: string };
