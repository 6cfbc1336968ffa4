/**
 * The worker of the WASM backend: its own wasm instance and its own packed copy of the weights;
 * runs the batch rows it is sent. One message in and one out per call, never one per time step.
 *
 * @module
 */

import {
  type CellSpec,
  type EpsilonRule,
  type LayerRelevance,
  type SequenceInput,
  type SequenceOutput,
  specWithParameters,
} from "../../contract/mod.ts";
import type { WasmFlavor } from "./bindings.ts";
import { WasmKernel } from "./kernel.ts";
import { transferable } from "./thread.ts";
import { abortSharing, SharedUnits } from "./shared_units.ts";
import {
  type SliceGradients,
  type SliceInputGradients,
  WasmTrainingKernel,
} from "./train_kernel.ts";

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

/** The parts of a worker's global scope this file uses (the `dom` lib types `self` as a window). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;
let compiled: { readonly spec: CellSpec; readonly flavor: WasmFlavor } | null = null;
let kernel: WasmKernel | null = null;
/** Made on the first training call: a worker that only runs inference never holds one. */
let trainer: WasmTrainingKernel | null = null;

function handle(request: WorkerRequest): [WorkerResult, Transferable[]] {
  if (request.type === "compile") {
    kernel?.dispose();
    trainer?.dispose();
    trainer = null;
    compiled = { spec: request.spec, flavor: request.flavor };
    kernel = new WasmKernel(compiled.spec, compiled.flavor);
    return [null, []];
  }
  if (compiled === null) throw new Error(`wasm worker: ${request.type} before compile`);
  if (request.type === "weights") {
    compiled = { ...compiled, spec: specWithParameters(compiled.spec, request.params) };
    // The inference kernel is packed again from the new weights when it next runs.
    kernel?.dispose();
    kernel = null;
    if (trainer?.usable) trainer.setParameters(request.params);
    return [null, []];
  }
  if (request.type === "share") {
    const { input, buffer, part, parts } = request;
    try {
      if (!kernel?.usable) kernel = new WasmKernel(compiled.spec, compiled.flavor);
      const units = new SharedUnits(buffer, input.batch, compiled.spec.hiddenSize, part, parts);
      const result = kernel.runSharing(input, units);
      return [result, transferable([result.output, result.hidden, result.state])];
    } catch (error) {
      abortSharing(buffer, parts);
      throw error;
    }
  }
  if (request.type === "run") {
    // A call that trapped leaves the kernel unusable: rebuild it from the spec.
    if (!kernel?.usable) kernel = new WasmKernel(compiled.spec, compiled.flavor);
    const result = kernel.run(request.input);
    const { output, hidden, state, attention, lanes } = result;
    return [result, transferable([output, hidden, state, attention, lanes])];
  }
  if (!trainer?.usable) trainer = new WasmTrainingKernel(compiled.spec, compiled.flavor);
  if (request.type === "forward") {
    const { input, step, candidates, scratch } = request;
    const result = trainer.forward(input, step, candidates, scratch);
    return [result, transferable([result.output, result.hidden, result.state])];
  }
  if (request.type === "relevance") {
    const { input, step, outputRelevance, rule } = request;
    const result = trainer.relevance(input, step, outputRelevance, rule);
    return [result, transferable([result.input, result.rest])];
  }
  const result = trainer.backward(request.input, request.step, request.grads, request.scratch);
  return [result, transferable([result.params, result.x, result.hidden, result.state])];
}

scope.onmessage = (event: MessageEvent<WorkerRequest>): void => {
  const request = event.data;
  try {
    const [result, transfer] = handle(request);
    scope.postMessage({ id: request.id, ok: true, result }, transfer);
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    scope.postMessage({ id: request.id, ok: false, name, message }, []);
  }
};
