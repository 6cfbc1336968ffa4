/**
 * Opens HDF5 bytes with h5wasm (the HDF5 C library compiled to WebAssembly) in its in-memory file
 * system, so reading needs no permissions. h5wasm is imported on first use: importing this
 * package does not compile the 4 MB module.
 *
 * @module
 */

import type * as H5 from "npm:h5wasm@0.10.3";

/** An open HDF5 file and the h5wasm classes to inspect its entries. */
export interface Hdf5Handle {
  /** The root group. */
  readonly file: H5.File;
  /** h5wasm's `Group` class, for `instanceof`. */
  readonly Group: typeof H5.Group;
  /** h5wasm's `Dataset` class, for `instanceof`. */
  readonly Dataset: typeof H5.Dataset;
  /** The file's size in bytes: no uncompressed dataset can hold more. */
  readonly size: number;
}

let library: Promise<typeof H5> | undefined;
let opened = 0;

function loadLibrary(): Promise<typeof H5> {
  library ??= import("npm:h5wasm@0.10.3").then(async (h5wasm) => {
    const module = await h5wasm.ready;
    // HDF5 errors become thrown Errors instead of a diagnostic dump on stderr.
    module.activate_throwing_error_handler();
    return h5wasm;
  });
  return library;
}

/**
 * The summary line of an HDF5 diagnostic: its innermost reason, e.g. "file signature not found".
 */
export function hdf5Reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const reasons = [...message.matchAll(/#\d+: .* in [\w]+\(\): (.*)$/gm)].map((m) => m[1]);
  return reasons.at(-1) ?? message.split("\n")[0];
}

/**
 * Opens `bytes` as an HDF5 file, runs `read` on it and closes it, whatever happens.
 *
 * @throws {Error} With HDF5's own diagnostic if the bytes are not a readable HDF5 file.
 *
 * @example
 * ```ts ignore
 * import { withHdf5 } from "./hdf5.ts";
 * const keys = await withHdf5(bytes, ({ file }) => file.keys());
 * ```
 */
export async function withHdf5<T>(
  bytes: Uint8Array,
  read: (handle: Hdf5Handle) => T,
): Promise<T> {
  const h5wasm = await loadLibrary();
  const FS = h5wasm.FS!;
  const path = `/arraylstm-${opened++}.h5`;
  FS.writeFile(path, bytes);
  try {
    const file = new h5wasm.File(path, "r");
    try {
      return read({ file, Group: h5wasm.Group, Dataset: h5wasm.Dataset, size: bytes.length });
    } finally {
      file.close();
    }
  } finally {
    FS.unlink(path);
  }
}
