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
