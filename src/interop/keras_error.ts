/**
 * `KerasLoadError`, the error of every unreadable or unexpected Keras file.
 *
 * @module
 */

/**
 * The error every unreadable or unexpected Keras file produces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KerasLoadError, readKeras } from "./keras_read.ts";
 * await assert.rejects(readKeras(new TextEncoder().encode("not a Keras file")), KerasLoadError);
 * ```
 */
export class KerasLoadError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the file and what was found.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KerasLoadError } from "./keras_error.ts";
   * const error = new KerasLoadError("no LSTM layer in it");
   * assert.equal(error.message, "cannot load Keras file: no LSTM layer in it");
   * assert.equal(error.name, "KerasLoadError");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`cannot load Keras file: ${message}`, options);
    this.name = "KerasLoadError";
  }
}
