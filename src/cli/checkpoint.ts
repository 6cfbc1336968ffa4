/**
 * `train`'s checkpoints: the model file with the training state, written atomically; the
 * optimizer's state read back from one; the data's hash; and the stop request of Ctrl-C (SIGINT)
 * or SIGTERM.
 *
 * @module
 */

import type { OptimizerStateDict, Sequential, Tensor } from "../../mod.ts";
import { type FileWriter, writeOutput } from "./files.ts";
import type { CliIO } from "./io.ts";
import { encodeTaskModel, type TaskMetadata, type TrainingState } from "./model_file.ts";

/** The optimizer's `stateDict` from a checkpoint's counters, options and buffers (`optimizer.*`). */
export function optimizerDict(
  state: TrainingState,
  tensors: Record<string, Tensor>,
): OptimizerStateDict {
  return {
    options: state.optimizer.options,
    state: state.optimizer.counters.map((counters, index) => {
      if (counters === null) return null;
      const prefix = `optimizer.${index}.`;
      const buffers = Object.entries(tensors).filter(([name]) => name.startsWith(prefix))
        .map(([name, t]) => [name.slice(prefix.length), t]);
      return { ...counters, ...Object.fromEntries(buffers) };
    }),
  };
}

/**
 * Writes the model with the training state (parameters, optimizer buffers as `optimizer.*`
 * tensors, metadata) atomically: the file at `path` is either the previous checkpoint or this
 * one, never a part.
 */
export async function saveCheckpoint(
  path: string,
  task: TaskMetadata,
  state: TrainingState,
  model: Sequential,
  optimizer: OptimizerStateDict,
  write?: FileWriter,
): Promise<void> {
  const buffers: Record<string, Tensor> = {};
  const counters = optimizer.state.map((entry, index) => {
    if (entry === null) return null;
    const numbers: Record<string, number> = {};
    for (const [name, value] of Object.entries(entry)) {
      if (typeof value === "number") numbers[name] = value;
      else buffers[`optimizer.${index}.${name}`] = value;
    }
    return numbers;
  });
  state.optimizer = { counters, options: optimizer.options };
  await writeOutput(path, encodeTaskModel(model, { ...task, training: state }, buffers), write);
}

/** The SHA-256 of `bytes`, in hex. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A request to stop: which signal, and the exit status that reports it (130, 143). */
export interface StopRequest {
  /** `"SIGINT"` (Ctrl-C) or `"SIGTERM"`. */
  signal: "SIGINT" | "SIGTERM";
  /** 128 + the signal's number. */
  status: number;
}

/** The signals that stop training, with their exit statuses. */
const SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * The stop of a run: `io.interrupt` when given (aborted with reason `"SIGTERM"` for a SIGTERM,
 * anything else for Ctrl-C), else SIGINT and SIGTERM sent to the process. `signal` is what `fit`
 * watches; `requested()` says which stop came; `dispose()` removes the listeners.
 */
export function stopRequests(
  io: CliIO,
): { signal: AbortSignal; requested(): StopRequest | null; dispose(): void } {
  const controller = new AbortController();
  const signal = io.interrupt ?? controller.signal;
  const listeners: [Deno.Signal, () => void][] = [];
  for (const name of io.interrupt === undefined ? Object.keys(SIGNALS) as Deno.Signal[] : []) {
    const listener = () => controller.abort(name);
    try {
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    } catch {
      // SIGTERM cannot be listened for on Windows; Ctrl-C still can.
    }
  }
  return {
    signal,
    requested: () =>
      !signal.aborted
        ? null
        : signal.reason === "SIGTERM"
        ? { signal: "SIGTERM", status: SIGNALS.SIGTERM }
        : { signal: "SIGINT", status: SIGNALS.SIGINT },
    dispose: () => listeners.forEach(([name, l]) => Deno.removeSignalListener(name, l)),
  };
}
