/**
 * The C ABI of the native library (`native/src/ffi.rs`), as `Deno.dlopen` takes it: every symbol
 * with its parameter and result types. Arrays pass as `"buffer"` (a pointer to the typed array's
 * own bytes: no copy), both the inputs and the arrays a cell's forward writes its results into; handles and a trainer's result addresses as `"pointer"`. The calls that run kernels
 * exist twice, a blocking one for small calls and a `nonblocking` one (run on a thread of Deno's
 * pool, answering with a promise) that keeps the event loop free during large ones.
 *
 * @module
 */

/** The ABI revision this table describes; the library must report the same. */
export const ABI_VERSION = 4;

/** One parameter array and its length, as the C ABI takes each of a cell's arrays. */
const array = ["buffer", "u32"] as const;
const six = [...array, ...array, ...array, ...array, ...array, ...array] as const;

const cellNew = {
  parameters: ["u32", "u32", "u32", "u8", "f32", "u32", "u32", ...six],
  result: "pointer",
} as const;
/** An array the library writes a result into, and its length. */
const out = ["buffer", "u32"] as const;
const cellForward = {
  name: "alstm_cell_forward",
  parameters: [
    "pointer",
    "u32",
    "u8",
    "u32",
    "u32",
    "buffer",
    "buffer",
    "buffer",
    ...out,
    ...out,
    ...out,
    ...out,
    ...out,
  ],
  result: "i32",
} as const;
const torchForward = {
  name: "alstm_torch_cell_forward",
  parameters: ["pointer", "u32", "u32", "u32", "buffer", "buffer", ...out, ...out],
  result: "i32",
} as const;
const trainerForward = {
  name: "alstm_trainer_forward",
  parameters: [
    "pointer",
    "u32",
    "u32",
    "u32",
    "buffer",
    "buffer",
    "buffer",
    ...out,
    ...out,
    ...out,
    "u8",
  ],
  result: "i32",
} as const;
const trainerBackward = {
  name: "alstm_trainer_backward",
  parameters: ["pointer", "buffer", "buffer", "u32", "buffer", "u32", "u8", "u8"],
  result: "i32",
} as const;
const trainerRelevance = {
  name: "alstm_trainer_relevance",
  parameters: ["pointer", "buffer", "f32", "f32"],
  result: "i32",
} as const;

/**
 * The symbols, keyed by the name the TypeScript side calls them by.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SYMBOLS } from "./symbols.ts";
 * assert.equal(SYMBOLS.alstm_abi_version.result, "u32");
 * ```
 */
export const SYMBOLS = {
  alstm_abi_version: { parameters: [], result: "u32" },
  alstm_isa: { parameters: [], result: "u32" },
  alstm_cpu_level: { parameters: [], result: "u32" },
  alstm_last_error: { parameters: ["buffer", "u32"], result: "usize" },
  alstm_calibrate_gemm: { parameters: ["u32", "u32", "u32", "u32"], result: "f32" },
  alstm_cell_new: cellNew,
  alstm_cell_forward: cellForward,
  alstm_cell_forward_async: { ...cellForward, nonblocking: true },
  alstm_cell_free: { parameters: ["pointer"], result: "void" },
  alstm_torch_cell_new: {
    parameters: ["u32", "u32", "u32", "u32", ...six.slice(0, 8)],
    result: "pointer",
  },
  alstm_torch_cell_forward: torchForward,
  alstm_torch_cell_forward_async: { ...torchForward, nonblocking: true },
  alstm_torch_cell_free: { parameters: ["pointer"], result: "void" },
  alstm_trainer_new: cellNew,
  alstm_trainer_free: { parameters: ["pointer"], result: "void" },
  alstm_trainer_parameters_len: { parameters: ["pointer"], result: "usize" },
  alstm_trainer_vector: { parameters: ["pointer", "u32"], result: "pointer" },
  alstm_trainer_repack: { parameters: ["pointer"], result: "i32" },
  alstm_trainer_forward: trainerForward,
  alstm_trainer_forward_async: { ...trainerForward, nonblocking: true },
  alstm_trainer_backward: trainerBackward,
  alstm_trainer_backward_async: { ...trainerBackward, nonblocking: true },
  alstm_trainer_relevance: trainerRelevance,
  alstm_trainer_relevance_async: { ...trainerRelevance, nonblocking: true },
  alstm_trainer_result: { parameters: ["pointer", "u32"], result: "pointer" },
  alstm_trainer_sgd_step: {
    parameters: ["pointer", "f64", "f64", "f64", "u8", "f64"],
    result: "i32",
  },
  alstm_trainer_adam_step: {
    parameters: ["pointer", "f64", "f64", "f64", "f64", "f64", "u8", "u8"],
    result: "i32",
  },
  alstm_trainer_optimizer_steps: { parameters: ["pointer"], result: "u32" },
  alstm_trainer_set_optimizer_steps: { parameters: ["pointer", "u32"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened library's functions. */
export type NativeSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
