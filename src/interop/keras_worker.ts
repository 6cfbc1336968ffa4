/**
 * The Worker `loadKeras` parses a Keras file in: one request (the file's bytes), one reply (the
 * layers, their arrays transferred, or the error's message). The caller terminates it when the
 * reply comes or its deadline passes, so HDF5 looping on a hostile file costs bounded time.
 *
 * @module
 */

import type { KerasLayerWeights, ReadKerasOptions } from "./keras_read.ts";
import { KerasLoadError, readKeras } from "./keras_read.ts";
import { workerScope } from "../worker_scope.ts";

/** The worker's request: the file's bytes and the reader's options. */
export interface KerasWorkerRequest {
  readonly bytes: Uint8Array;
  readonly options: ReadKerasOptions;
}

/** The worker's reply: the layers, or why the file was refused. */
export type KerasWorkerReply =
  | { readonly ok: true; readonly layers: KerasLayerWeights[] }
  | { readonly ok: false; readonly message: string; readonly refused: boolean };

// The message of a KerasLoadError without the prefix its constructor adds again on the main side.
const PREFIX = new KerasLoadError("").message;

const scope = workerScope<KerasWorkerRequest, KerasWorkerReply>();

scope.onmessage = async (event: MessageEvent<KerasWorkerRequest>) => {
  let reply: KerasWorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const layers = await readKeras(event.data.bytes, event.data.options);
    reply = { ok: true, layers };
    // Every tensor is in its layer's weights (the named fields are the same objects).
    const arrays = layers.flatMap((layer) => Object.values(layer.weights).map((t) => t.data));
    transfer = [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))];
  } catch (error) {
    const refused = error instanceof KerasLoadError;
    const message = error instanceof Error ? error.message : String(error);
    reply = { ok: false, refused, message: refused ? message.slice(PREFIX.length) : message };
  }
  scope.postMessage(reply, transfer);
};
