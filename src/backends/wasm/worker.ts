/**
 * The worker of the WASM backend: its own wasm instance and its own packed copy of the weights;
 * runs the batch rows it is sent. One message in and one out per call, never one per time step.
 *
 * @module
 */

import { type CellSpec, specWithParameters } from "../../contract/mod.ts";
import type { WasmFlavor } from "./bindings.ts";
import { WasmKernel } from "./kernel.ts";
import {
  transferable,
  type WorkerReply,
  type WorkerRequest,
  type WorkerResult,
} from "./protocol.ts";
import { abortSharing, SharedUnits } from "./shared_units.ts";
import { WasmTrainingKernel } from "./train_kernel.ts";
import { workerScope } from "../../worker_scope.ts";

const scope = workerScope<WorkerRequest, WorkerReply>();
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
