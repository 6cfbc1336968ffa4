/**
 * Foreign weight files: recognising safetensors, torch and Keras files, and reading them with
 * one-line errors.
 *
 * @module
 */

import { type KerasLayerWeights, loadKeras, loadTorch, type Tensor } from "../../mod.ts";
import { CliError, reason } from "./io.ts";

/** The kinds of weight file the CLI reads. */
export type WeightFileKind = "safetensors" | "torch" | "keras";

/** The kind of `bytes`, from the extension of `path` and the file's first bytes. */
export function weightFileKind(path: string, bytes: Uint8Array): WeightFileKind {
  const lower = path.toLowerCase();
  const hdf5 = bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46;
  if (hdf5 || lower.endsWith(".h5") || lower.endsWith(".keras")) return "keras";
  const zipOrPickle = (bytes[0] === 0x50 && bytes[1] === 0x4b) || bytes[0] === 0x80;
  if (zipOrPickle || /\.(pt|pth|bin|ckpt)$/.test(lower)) return "torch";
  return "safetensors";
}

/**
 * What a file that is not a safetensors model is, and the command that reads it: one line for
 * `sample`, `predict`, `explain` and `train --resume` given the wrong file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notAModel } from "./weights.ts";
 * const pt = new Uint8Array([0x50, 0x4b, 3, 4]);
 * assert.match(notAModel("x.pt", pt, "bad header"), /x.pt is a PyTorch file, not a model of train: convert it with/);
 * ```
 */
export function notAModel(path: string, bytes: Uint8Array, why: string): string {
  const lower = path.toLowerCase();
  const text = !bytes.subarray(0, 4096).includes(0) &&
    !lower.match(/\.(safetensors|pt|pth|bin|ckpt|h5|keras)$/);
  if (bytes.length === 0) return `${path} is empty, not a model file`;
  switch (text ? "text" : weightFileKind(path, bytes)) {
    case "torch":
      return `${path} is a PyTorch file, not a model of train: convert it with ` +
        `\`convert --from torch ${path} --out model.safetensors\` (a bare layer: it has no vocabulary)`;
    case "keras":
      return `${path} is a Keras (HDF5) file, not a model of train: convert its LSTM layers ` +
        `with \`convert --from keras ${path} --out model.safetensors\``;
    case "text":
      return `${path} is a text file, not a model: train one on it with ` +
        `\`train --data ${path} --out model.safetensors\``;
    default:
      return `${path} is not a model file (not safetensors: ${why}); \`inspect ${path}\` says ` +
        "what it holds";
  }
}

/** A torch state_dict, with a one-line error naming `path` when it cannot be read. */
export function readTorch(bytes: Uint8Array, path: string): Record<string, Tensor> {
  try {
    return loadTorch(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
}

/** The layers of a Keras file, with a one-line error naming `path` when it cannot be read. */
export async function readKeras(bytes: Uint8Array, path: string): Promise<KerasLayerWeights[]> {
  try {
    return await loadKeras(bytes);
  } catch (error) {
    throw new CliError(`${path}: ${reason(error)}`);
  }
}
