/**
 * `train`'s checkpoints: the model file with the training state, written atomically; the
 * optimizer's state read back from one; the data's hash; and the stop request of Ctrl-C (SIGINT)
 * or SIGTERM.
 *
 * @module
 */

import type { OptimizerStateDict, Tensor } from "../../mod.ts";
import { type FileWriter, writeOutput } from "./files.ts";
import type { CliIO } from "./io.ts";
import {
  encodeModelFile,
  type ModelFileMeta,
  type Network,
  type TrainingState,
  unprefixed,
} from "./model_file.ts";

/** The optimizer's `stateDict` from a checkpoint's counters, options and buffers. */
export function optimizerDict(
  state: TrainingState,
  tensors: Record<string, Tensor>,
): OptimizerStateDict {
  return {
    options: state.optimizer.options,
    state: state.optimizer.counters.map((counters, index) =>
      counters === null ? null : { ...counters, ...unprefixed(`optimizer.${index}.`, tensors) }
    ),
  };
}

/**
 * Writes the model file with the training state (parameters, optimizer buffers, metadata)
 * atomically: the file at `path` is either the previous checkpoint or this one, never a part.
 */
export async function saveCheckpoint(
  path: string,
  meta: ModelFileMeta,
  state: TrainingState,
  network: Network,
  optimizer: OptimizerStateDict,
  write?: FileWriter,
): Promise<void> {
  const tensors: Record<string, Tensor> = network.stateDict();
  const counters = optimizer.state.map((entry, index) => {
    if (entry === null) return null;
    const numbers: Record<string, number> = {};
    for (const [name, value] of Object.entries(entry)) {
      if (typeof value === "number") numbers[name] = value;
      else tensors[`optimizer.${index}.${name}`] = value;
    }
    return numbers;
  });
  state.optimizer = { counters, options: optimizer.options };
  await writeOutput(path, encodeModelFile({ meta: { ...meta, training: state }, tensors }), write);
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
 * Listens for a stop: `io.interrupt` (aborted with reason `"SIGTERM"` for a SIGTERM, anything
 * else for Ctrl-C), or SIGINT and SIGTERM sent to the process. `requested()` is checked between
 * training steps; `dispose()` removes the listeners.
 */
export function stopRequests(io: CliIO): { requested(): StopRequest | null; dispose(): void } {
  if (io.interrupt !== undefined) {
    const signal = io.interrupt;
    return {
      requested: () =>
        !signal.aborted
          ? null
          : signal.reason === "SIGTERM"
          ? { signal: "SIGTERM", status: SIGNALS.SIGTERM }
          : { signal: "SIGINT", status: SIGNALS.SIGINT },
      dispose() {},
    };
  }
  let request: StopRequest | null = null;
  const listeners: [Deno.Signal, () => void][] = [];
  for (const [name, status] of Object.entries(SIGNALS) as [keyof typeof SIGNALS, number][]) {
    const listener = () => void (request ??= { signal: name, status });
    try {
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    } catch {
      // SIGTERM cannot be listened for on Windows; Ctrl-C still can.
    }
  }
  return {
    requested: () => request,
    dispose: () => listeners.forEach(([name, l]) => Deno.removeSignalListener(name, l)),
  };
}
