/**
 * The raw interface of the WASM module that `wasm/build.ts` builds (wasm-bindgen 0.2.83's exports
 * of `wasm/src/lib.rs`): what `src/backends/wasm/bindings.ts` calls, and what the build checks
 * every new module against, so that the hand-written bindings cannot silently drift from the Rust
 * crate. It lives beside the crate: the build script and the runtime both read it.
 *
 * @module
 */

/** Every function the module exports, with its number of wasm parameters. */
export const RAW_FUNCTIONS = {
  /** `__wbindgen_malloc(bytes) → address`. */
  __wbindgen_export_0: 1,
  /**
   * `Cell::new`: kind, k, maxPooling, gate slope (`hardSigmoidSlope` of `src/contract/activation.ts`), I, H, then
   * (address, length) of six parameter arrays.
   */
  cell_new: 18,
  /** `Cell::forward`: cell, batch, seqLen, then (address, length) of x, hidden, state. */
  cell_forward: 9,
  /** `Cell::begin`: as `cell_forward`. */
  cell_begin: 9,
  /** `Cell::step`: cell, t, first block, end block → address of the next rows' `h`. */
  cell_step: 4,
  cell_finish: 1,
  cell_row_stride: 1,
  cell_output_ptr: 1,
  cell_hidden_ptr: 1,
  cell_state_ptr: 1,
  /** `Cell::set_outputs`: cell, attention, lanes. */
  cell_set_outputs: 3,
  cell_attention_ptr: 1,
  cell_lanes_ptr: 1,
  /** Drops a `Cell`. */
  __wbg_cell_free: 1,
  calibrate_gemm: 4,
  /** `Trainer::new`: as `cell_new`. */
  trainer_new: 18,
  trainer_repack: 1,
  trainer_parameters_ptr: 1,
  trainer_parameters_len: 1,
  trainer_gradients_ptr: 1,
  trainer_zero_grad: 1,
  /** `Trainer::forward`: as `cell_forward`. */
  trainer_forward: 9,
  trainer_output_ptr: 1,
  trainer_hidden_ptr: 1,
  trainer_state_ptr: 1,
  /**
   * `Trainer::backward`: trainer, then (address, length) of dOutput, dHidden, dState, then
   * wantX, wantHidden.
   */
  trainer_backward: 9,
  trainer_grad_x_ptr: 1,
  trainer_grad_hidden_ptr: 1,
  trainer_grad_state_ptr: 1,
  /** `Trainer::keep_candidates`: trainer, keep. */
  trainer_keep_candidates: 2,
  /** `Trainer::relevance`: trainer, (address, length) of the output relevance, eps, biasFactor. */
  trainer_relevance: 5,
  trainer_relevance_x_ptr: 1,
  trainer_relevance_rest_ptr: 1,
  trainer_grad_squared_norm: 1,
  trainer_scale_grads: 2,
  /** `Trainer::sgd_update`: trainer, lr, momentum, dampening, nesterov, weightDecay. */
  trainer_sgd_update: 6,
  /** `Trainer::adam_update`: trainer, lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled. */
  trainer_adam_update: 8,
  trainer_optimizer_state_ptr: 2,
  trainer_optimizer_steps: 1,
  trainer_set_optimizer_steps: 2,
  /** Drops a `Trainer`. */
  __wbg_trainer_free: 1,
  /** `TorchCell::new`: kind, I, H, then (address, length) of weight_ih, bias_ih, weight_hh, bias_hh. */
  torchcell_new: 11,
  /** `TorchCell::forward`: cell, batch, seqLen, then (address, length) of x, hidden. */
  torchcell_forward: 7,
  torchcell_output_ptr: 1,
  torchcell_hidden_ptr: 1,
  /** Drops a `TorchCell`. */
  __wbg_torchcell_free: 1,
} as const;

/** The module's imports: `wbg.__wbindgen_throw(address, length)` throws a UTF-8 message. */
export const RAW_IMPORTS = ["wbg.__wbindgen_throw"] as const;

/** The module's exports as `bindings.ts` calls them; addresses are `u32` read as `i32`. */
export type RawExports =
  & { readonly memory: WebAssembly.Memory }
  & { readonly [name in keyof typeof RAW_FUNCTIONS]: (...args: number[]) => number };

/**
 * Why a module does not match {@linkcode RAW_FUNCTIONS} and {@linkcode RAW_IMPORTS}, or `null`.
 *
 * @example
 * ```ts
 * import { abiMismatch } from "./abi.ts";
 * import assert from "node:assert/strict";
 * const empty = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
 * assert.match(abiMismatch(empty)!, /^imports \[\]/);
 * ```
 */
export function abiMismatch(module: WebAssembly.Module): string | null {
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
  if (JSON.stringify(imports) !== JSON.stringify(RAW_IMPORTS)) {
    return `imports ${JSON.stringify(imports)}, expected ${JSON.stringify(RAW_IMPORTS)}`;
  }
  const exports = WebAssembly.Module.exports(module).map((e) => e.name).sort();
  const expected = ["memory", ...Object.keys(RAW_FUNCTIONS)].sort();
  if (JSON.stringify(exports) !== JSON.stringify(expected)) {
    return `exports ${JSON.stringify(exports)}, expected ${JSON.stringify(expected)}`;
  }
  const instance = new WebAssembly.Instance(module, {
    wbg: { __wbindgen_throw: () => {} },
  });
  for (const [name, arity] of Object.entries(RAW_FUNCTIONS)) {
    const length = (instance.exports[name] as (...args: number[]) => number).length;
    if (length !== arity) return `${name} takes ${length} parameters, expected ${arity}`;
  }
  return null;
}
