/**
 * Reads the weights of a Keras Sequential model of LSTM and Dense layers from the files Keras
 * writes: Keras 3's `.weights.h5` and `.keras` (a zip of `config.json` and `model.weights.h5`),
 * and Keras 2's `.h5` from `model.save` or `model.save_weights`. Weights keep Keras' own layouts;
 * `importKerasLSTM` and `importKerasDense` convert them. The file is parsed in a Worker with a
 * deadline: HDF5 (like h5py) can loop forever on a corrupt file, and a Worker can be stopped.
 *
 * @module
 */

import { type KerasLayerWeights, KerasLoadError, readKeras } from "./keras_read.ts";
import type { KerasWorkerReply, KerasWorkerRequest } from "./keras_worker.ts";

export {
  type KerasBidirectionalWeights,
  type KerasDenseWeights,
  type KerasEmbeddingWeights,
  type KerasGRUWeights,
  type KerasLayerCommon,
  type KerasLayerInfo,
  type KerasLayerWeights,
  KerasLoadError,
  type KerasLSTMWeights,
  type KerasRecurrentWeights,
  type KerasSimpleRNNWeights,
} from "./keras_read.ts";

/** Options of {@linkcode loadKeras}. */
export interface LoadKerasOptions {
  /**
   * How long parsing may take, in milliseconds, before it is stopped with a
   * {@linkcode KerasLoadError}. Default: 30 s plus 1 s per 10 MB of file (see
   * {@linkcode defaultKerasTimeout}).
   */
  readonly timeoutMs?: number;
  /**
   * The model's config (`model.to_json()`, or a `.keras` file's `config.json`), as text or
   * parsed, for a weights-only file (Keras 3 `.weights.h5`, Keras 2 `save_weights`): it gives the
   * layers' order, classes and configs. A file that holds its own config ignores it.
   */
  readonly config?: string | Record<string, unknown>;
}

/**
 * The default deadline of {@linkcode loadKeras} for a file of `byteLength` bytes: 30 s, which
 * covers starting the Worker and compiling HDF5 (well under a second) many times over on a slow,
 * busy machine, plus 1 s per 10 MB, a rate ten times below what reading HDF5 from memory takes.
 * A legitimate file never comes near it; a file that makes HDF5 loop is stopped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultKerasTimeout } from "./keras.ts";
 * assert.equal(defaultKerasTimeout(0), 30_000);
 * assert.equal(defaultKerasTimeout(1e9), 130_000);
 * ```
 */
export function defaultKerasTimeout(byteLength: number): number {
  return 30_000 + Math.ceil(byteLength / 10_000);
}

const WORKER_URL = new URL("./keras_worker.ts", import.meta.url);

// A Worker loads its modules as dynamic imports: local files need read access (all of it: the
// package's folders and the npm cache), remote ones import access to their host. Queried, never
// prompted; without it, parsing runs in this thread.
function workerPermitted(): boolean {
  if (typeof Deno === "undefined") return typeof Worker === "function";
  const { protocol, hostname, port } = WORKER_URL;
  const descriptor: Deno.PermissionDescriptor = protocol === "file:"
    ? { name: "read" }
    : { name: "import", host: `${hostname}:${port || (protocol === "https:" ? 443 : 80)}` };
  return Deno.permissions?.querySync?.(descriptor).state === "granted";
}

/**
 * Reads the layers with weights of a Keras Sequential model, in model order, from a Keras 3
 * `.keras`, `.weights.h5` or `.h5` file or a Keras 2 `.h5` file (`model.save` or
 * `save_weights`): `LSTM`, `GRU`, `SimpleRNN`, `Bidirectional` of those, `Embedding` and `Dense`,
 * each with every weight by its full path in the file (`weights`), its class and config and the
 * file's Keras version when the file holds them. Layers without weights (Dropout, Activation,
 * ...) come as `preceding` of the next layer with weights (`following` of the last), when the
 * file holds the model's config. A layer whose weights are missing is refused. A weights-only
 * file (Keras 3 `.weights.h5`, Keras 2 `save_weights`) holds no config: pass it as
 * `options.config`; without it, a `.weights.h5` gives Embedding, then the recurrent layers,
 * then Dense layers, each class in order (recurrent layers of two classes are refused).
 *
 * The file is parsed in a module Worker (h5wasm, the HDF5 library compiled to WebAssembly, is
 * loaded there; reading needs no permissions beyond loading this package's modules), stopped
 * after `options.timeoutMs`. Where Workers cannot start without a permission prompt, parsing
 * runs in the calling thread with no deadline.
 *
 * @param bytes The file's contents (copied to the Worker; the caller keeps them).
 * @param options `timeoutMs`: the parsing deadline, default {@linkcode defaultKerasTimeout}.
 * @returns The layers with weights, first to last.
 * @throws {KerasLoadError} If the file is not HDF5 or a `.keras` zip, holds none of the Keras
 * layouts (the message lists what it holds), holds a layer with weights that is not an LSTM or
 * Dense layer or whose weights have inconsistent shapes, lacks a layer's weights, declares
 * datasets larger than the file, or takes longer than the deadline to parse.
 *
 * @example Read a Keras LSTM stack
 * ```ts ignore
 * import { loadKeras } from "./keras.ts";
 * const layers = await loadKeras(await Deno.readFile("model.keras"));
 * for (const layer of layers) console.log(layer.kind, layer.name, layer.units);
 * ```
 *
 * @example Anything that is neither HDF5 nor a `.keras` zip is refused with a reason
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, loadKeras } from "./keras.ts";
 * await assert.rejects(loadKeras(new Uint8Array(16)), KerasLoadError);
 * ```
 */
export async function loadKeras(
  bytes: Uint8Array,
  options: LoadKerasOptions = {},
): Promise<KerasLayerWeights[]> {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`bytes must be a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  }
  const timeoutMs = options.timeoutMs ?? defaultKerasTimeout(bytes.length);
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new RangeError(`options.timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  }
  const readOptions = options.config === undefined ? {} : { config: options.config };
  if (!workerPermitted()) return await readKeras(bytes, readOptions);
  return await new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { type: "module" });
    const finish = () => {
      clearTimeout(timer);
      worker.terminate();
    };
    const timer = setTimeout(() => {
      finish();
      reject(
        new KerasLoadError(
          `parsing took longer than ${timeoutMs} ms and was stopped: the file is corrupt (HDF5 ` +
            `can loop on a damaged file) or very large; if you trust it, pass a larger ` +
            `timeoutMs to loadKeras`,
        ),
      );
    }, timeoutMs);
    worker.onmessage = (event: MessageEvent<KerasWorkerReply>) => {
      finish();
      const reply = event.data;
      if (reply.ok) resolve(reply.layers);
      else if (reply.refused) reject(new KerasLoadError(reply.message));
      else reject(new KerasLoadError(`the parser failed: ${reply.message}`));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      finish();
      reject(new KerasLoadError(`the parser's Worker failed: ${event.message}`));
    };
    worker.postMessage({ bytes, options: readOptions } satisfies KerasWorkerRequest);
  });
}
