/**
 * The Worker `loadKeras` parses a Keras file in: one request (the file's bytes), one reply (the
 * layers, their arrays transferred, or the error's message). The caller terminates it when the
 * reply comes or its deadline passes, so HDF5 looping on a hostile file costs bounded time.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { KerasLayerWeights } from "./keras_read.ts";
import { KerasLoadError, readKeras } from "./keras_read.ts";

/** The worker's reply: the layers, or why the file was refused. */
export type KerasWorkerReply =
  | { readonly ok: true; readonly layers: KerasLayerWeights[] }
  | { readonly ok: false; readonly message: string; readonly refused: boolean };

// The message of a KerasLoadError without the prefix its constructor adds again on the main side.
const PREFIX = new KerasLoadError("").message;

self.onmessage = async (event: MessageEvent<Uint8Array>) => {
  let reply: KerasWorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const layers = await readKeras(event.data);
    reply = { ok: true, layers };
    const arrays = layers.flatMap((layer) => [
      layer.kernel.data,
      ...(layer.kind === "lstm" ? [layer.recurrentKernel.data] : []),
      ...(layer.bias === undefined ? [] : [layer.bias.data]),
    ]);
    transfer = [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))];
  } catch (error) {
    const refused = error instanceof KerasLoadError;
    const message = error instanceof Error ? error.message : String(error);
    reply = { ok: false, refused, message: refused ? message.slice(PREFIX.length) : message };
  }
  self.postMessage(reply, transfer);
};
