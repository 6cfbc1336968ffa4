/**
 * The typed API of the WASM module (`wasm/src/lib.rs`), over its raw exports (`wasm/abi.ts`): what
 * wasm-bindgen's JavaScript glue would do, written out so it is linted and type-checked. The
 * module bytes come from `wasm/arraylstm_wasm.generated.ts`.
 *
 * Addresses in wasm memory are `u32`, but a wasm function returns them as `i32`, which JavaScript
 * reads as negative above 2 GiB; every address is therefore read with {@linkcode toAddress}.
 *
 * @module
 */

import { plainWasmBase64, relaxedWasmBase64 } from "../../../wasm/arraylstm_wasm.generated.ts";
import type { RawExports } from "../../../wasm/abi.ts";
import type { CellArguments, TorchCellArguments } from "../cell_arguments.ts";

/**
 * A forward's arguments: `batch` sequences of `seqLen` steps, `x (B, T, I)`, `hidden (B, H)`,
 * `state (k, B, H)`.
 */
export type ForwardArguments = [
  batch: number,
  seqLen: number,
  x: Float32Array,
  hidden: Float32Array,
  state: Float32Array,
];

/** The results of an LSTM-family forward, in wasm memory until the next call. */
export interface WasmForward {
  /** Byte address of the last forward's output `(B, T, H)`. */
  output_ptr(): number;
  /** Byte address of the last forward's final hidden state `(B, H)`. */
  hidden_ptr(): number;
  /** Byte address of the last forward's final cell states `(k, B, H)`. */
  state_ptr(): number;
}

/** A compiled cell in wasm memory (`Cell` of wasm/src/lib.rs). */
export interface WasmCell extends WasmForward {
  /** Runs `seqLen` steps of `batch` sequences; the results stay in wasm memory. */
  forward(...args: ForwardArguments): void;
  /**
   * `forward` step by step, for threads that share the hidden units of one call: `begin` takes
   * the call's arguments, then `step` for each step, then `finish`.
   */
  begin(...args: ForwardArguments): void;
  /**
   * Step `t` for the hidden units of blocks `[firstBlock, endBlock)` (four units each); returns
   * the byte address of `h_t` in the next step's first input row, where the caller writes the
   * other threads' units (rows are `row_stride()` floats apart).
   */
  step(t: number, firstBlock: number, endBlock: number): number;
  /** Ends a call run step by step; its results are read as after `forward`. */
  finish(): void;
  /** Floats from one input row to the next. */
  row_stride(): number;
  /** Asks the next calls for the attention weights and the chosen lanes (both off at first). */
  set_outputs(attention: boolean, lanes: boolean): void;
  /** Byte address of the last call's attention weights `(B, T, H, k)` (`f32`; when asked). */
  attention_ptr(): number;
  /** Byte address of the last call's chosen lanes `(B, T, H)` (`i32`; when asked). */
  lanes_ptr(): number;
  /** Frees the cell's weights and buffers; the object is unusable afterwards. */
  free(): void;
}

/** Packs a cell's PyTorch-layout parameters (`kind`: a code of `src/variants.ts`). */
export interface WasmCellConstructor {
  /** Copies the parameters into wasm memory and packs them; the arrays are only read. */
  new (...args: CellArguments): WasmCell;
}

/** A compiled GRU or RNN cell in wasm memory (`TorchCell` of wasm/src/torch_cell.rs). */
export interface WasmTorchCell {
  /** Runs `seqLen` steps of `batch` sequences; the results stay in wasm memory. */
  forward(batch: number, seqLen: number, x: Float32Array, hidden: Float32Array): void;
  /** Byte address of the last call's output `(B, T, H)`. */
  output_ptr(): number;
  /** Byte address of the last call's final hidden state `(B, H)`. */
  hidden_ptr(): number;
  /** Frees the cell's weights and buffers; the object is unusable afterwards. */
  free(): void;
}

/** Takes a GRU or RNN cell's torch parameters (`kind`: a code of `src/variants.ts`). */
export interface WasmTorchCellConstructor {
  /** Copies the parameters into wasm memory, transposed; the arrays are only read. */
  new (...args: TorchCellArguments): WasmTorchCell;
}

/**
 * A cell being trained, in wasm memory (`Trainer` of wasm/src/train.rs): flat parameters,
 * gradients and optimizer state in PyTorch's layouts, a recording forward and its backward.
 * Addresses point into the module's memory and are valid until the next call that may grow it.
 */
export interface WasmTrainer extends WasmForward {
  /** Packs the kernels' panels from the flat parameters again (after writing them). */
  repack(): void;
  /** Byte address of the flat parameters (`i2h.weight`, `i2h.bias`, `h2h.*`, `i2a.*`). */
  parameters_ptr(): number;
  /** Floats in the flat parameters (and in the gradients and each optimizer state vector). */
  parameters_len(): number;
  /** Byte address of the gradients, laid out as the parameters. */
  gradients_ptr(): number;
  /** Sets every gradient to zero (the backward adds to them). */
  zero_grad(): void;
  /** The recording forward, as `WasmCell.forward`; keeps the activations for one backward. */
  forward(...args: ForwardArguments): void;
  /**
   * Back-propagates through the last forward (once); empty `dHidden`/`dState` count as zero.
   * Adds the parameter gradients to the gradients. `wantX`/`wantHidden` false skip the work of
   * dLoss/d`x` and dLoss/d initial `hidden`, which are zeros then.
   */
  backward(
    dOutput: Float32Array,
    dHidden: Float32Array,
    dState: Float32Array,
    wantX: boolean,
    wantHidden: boolean,
  ): void;
  /** Byte address of dLoss/d`x` `(B, T, I)` of the last backward. */
  grad_x_ptr(): number;
  /** Byte address of dLoss/d initial `hidden` `(B, H)` of the last backward. */
  grad_hidden_ptr(): number;
  /** Byte address of dLoss/d initial `state` `(k, B, H)` of the last backward. */
  grad_state_ptr(): number;
  /**
   * Whether the following forwards keep the candidates' pre-activations, which `relevance`
   * needs (one-lane cells only).
   */
  keep_candidates(keep: boolean): void;
  /**
   * LRP-ε from the relevance `(B, T, H)` arriving at every step's hidden state back through the
   * last forward (which kept its candidates) to the input and the initial state.
   */
  relevance(outputRelevance: Float32Array, eps: number, biasFactor: number): void;
  /** Byte address of the last relevance pass's input relevance `(B, T, I)`. */
  relevance_x_ptr(): number;
  /** Byte address of the last relevance pass's rest `(B)`. */
  relevance_rest_ptr(): number;
  /** `Σ g²` over the gradients. */
  grad_squared_norm(): number;
  /** Multiplies every gradient by `factor`. */
  scale_grads(factor: number): void;
  /** One `torch.optim.SGD` step (the kernels read the new weights after `repack`). */
  sgd_update(
    lr: number,
    momentum: number,
    dampening: number,
    nesterov: boolean,
    weightDecay: number,
  ): void;
  /** One `torch.optim.Adam` (`decoupled`: `AdamW`) step (then `repack`). */
  adam_update(
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    amsgrad: boolean,
    decoupled: boolean,
  ): void;
  /** Byte address of optimizer state vector `slot` (0 momentum / `exp_avg`, 1, 2). */
  optimizer_state_ptr(slot: number): number;
  /** Optimizer steps taken. */
  optimizer_steps(): number;
  /** Sets the optimizer step count (resuming). */
  set_optimizer_steps(steps: number): void;
  /** Frees everything; the object is unusable afterwards. */
  free(): void;
}

/** Makes a trainer from a cell's PyTorch-layout parameters, as {@linkcode WasmCellConstructor}. */
export interface WasmTrainerConstructor {
  /** Copies the parameters into wasm memory; gradients and optimizer state start at zero. */
  new (...args: CellArguments): WasmTrainer;
}

/**
 * The two builds of the kernels: `"relaxed"` multiply-adds in the GEMM and `exp` with relaxed
 * SIMD's `f32x4.relaxed_madd` (fused where the CPU has FMA, so its last bits depend on the CPU);
 * `"plain"` uses only SIMD 1.0, for runtimes without relaxed SIMD.
 */
export type WasmFlavor = "plain" | "relaxed";

/** An instantiated module. */
export interface WasmModule {
  /** Which build this is. */
  readonly flavor: WasmFlavor;
  /** The cell class. */
  readonly Cell: WasmCellConstructor;
  /** The training class. */
  readonly Trainer: WasmTrainerConstructor;
  /** The GRU and RNN cell class. */
  readonly TorchCell: WasmTorchCellConstructor;
  /**
   * Runs the bare GEMM micro-kernel `repeats` times on a `(rows, depth) · (depth, 16 · blocks)`
   * product and returns one element of it: time it for the GEMM rate of this machine.
   */
  readonly calibrateGemm: (rows: number, depth: number, blocks: number, repeats: number) => number;
  /** The module's memory, where the results are read. */
  readonly memory: WebAssembly.Memory;
}

/**
 * A byte address returned by wasm as `i32`, as the unsigned number it is (memory above 2 GiB
 * would otherwise read as negative).
 *
 * @example
 * ```ts
 * import { toAddress } from "./bindings.ts";
 * import assert from "node:assert/strict";
 * assert.equal(toAddress(-2147483648), 2 ** 31);
 * assert.equal(toAddress(64), 64);
 * ```
 */
export function toAddress(value: number): number {
  return value >>> 0;
}

/** The Rust types the module exports, by the prefix of their exports' names. */
type Prefix = "cell" | "trainer" | "torchcell";

/** A method of one of the Rust types: an export's name without its type's prefix. */
type Method = {
  [name in keyof RawExports]: name extends `${Prefix}_${infer method}` ? method : never;
}[keyof RawExports];

/** An argument as the typed API takes it: a flag, a number, or an array to copy in. */
type Argument = boolean | number | Float32Array;

/**
 * The raw arguments for `args`: flags as 0 or 1, each array copied into fresh wasm memory as its
 * address and length (the Rust side takes ownership of the copies and frees them).
 */
function rawArguments(raw: RawExports, args: readonly Argument[]): number[] {
  return args.flatMap((arg) => {
    if (typeof arg !== "object") return [Number(arg)];
    const address = toAddress(raw.__wbindgen_export_0(arg.length * 4));
    new Float32Array(raw.memory.buffer, address, arg.length).set(arg);
    return [address, arg.length];
  });
}

/**
 * One object of an instance, of the Rust type whose exports start with `prefix`: its address,
 * checked on every use and freed once. Its methods are the exports bound to it (`bind`); the ones
 * every type has are here.
 */
class WasmObject {
  readonly #raw: RawExports;
  readonly #prefix: Prefix;
  #address: number;

  constructor(raw: RawExports, prefix: Prefix, args: readonly Argument[]) {
    this.#raw = raw;
    this.#prefix = prefix;
    this.#address = toAddress(raw[`${prefix}_new`](...rawArguments(raw, args)));
  }

  /** The object's address; throws once it was freed. */
  get #live(): number {
    if (this.#address === 0) throw new Error(`this wasm ${this.constructor.name} was freed`);
    return this.#address;
  }

  /**
   * The export `method` as a method of this object; `read` converts its result (addresses and
   * counts are `u32`, read with {@linkcode toAddress}).
   */
  protected bind(
    method: Method,
    read: (result: number) => number = (result) => result,
  ): (...args: Argument[]) => number {
    return (...args) => {
      const name = `${this.#prefix}_${method}` as `${Prefix}_${Method}` & keyof RawExports;
      return read(this.#raw[name](this.#live, ...rawArguments(this.#raw, args)));
    };
  }

  readonly forward = this.bind("forward");
  readonly output_ptr = this.bind("output_ptr", toAddress);
  readonly hidden_ptr = this.bind("hidden_ptr", toAddress);

  /** Frees the object; later calls do nothing. */
  free(): void {
    const address = this.#address;
    this.#address = 0;
    if (address !== 0) this.#raw[`__wbg_${this.#prefix}_free`](address);
  }
}

/** The `Cell` class bound to one instance's exports. */
function cellClass(raw: RawExports): WasmCellConstructor {
  return class Cell extends WasmObject implements WasmCell {
    constructor(...args: ConstructorParameters<WasmCellConstructor>) {
      super(raw, "cell", args);
    }

    readonly begin = this.bind("begin");
    readonly step = this.bind("step", toAddress);
    readonly finish = this.bind("finish");
    readonly row_stride = this.bind("row_stride");
    readonly state_ptr = this.bind("state_ptr", toAddress);
    readonly set_outputs = this.bind("set_outputs");
    readonly attention_ptr = this.bind("attention_ptr", toAddress);
    readonly lanes_ptr = this.bind("lanes_ptr", toAddress);
  };
}

/** The `TorchCell` class bound to one instance's exports. */
function torchCellClass(raw: RawExports): WasmTorchCellConstructor {
  return class TorchCell extends WasmObject implements WasmTorchCell {
    constructor(...args: ConstructorParameters<WasmTorchCellConstructor>) {
      super(raw, "torchcell", args);
    }
  };
}

/** The `Trainer` class bound to one instance's exports. */
function trainerClass(raw: RawExports): WasmTrainerConstructor {
  return class Trainer extends WasmObject implements WasmTrainer {
    constructor(...args: ConstructorParameters<WasmTrainerConstructor>) {
      super(raw, "trainer", args);
    }

    readonly repack = this.bind("repack");
    readonly parameters_ptr = this.bind("parameters_ptr", toAddress);
    readonly parameters_len = this.bind("parameters_len", toAddress);
    readonly gradients_ptr = this.bind("gradients_ptr", toAddress);
    readonly zero_grad = this.bind("zero_grad");
    readonly state_ptr = this.bind("state_ptr", toAddress);
    readonly backward = this.bind("backward");
    readonly keep_candidates = this.bind("keep_candidates");
    readonly relevance = this.bind("relevance");
    readonly relevance_x_ptr = this.bind("relevance_x_ptr", toAddress);
    readonly relevance_rest_ptr = this.bind("relevance_rest_ptr", toAddress);
    readonly grad_x_ptr = this.bind("grad_x_ptr", toAddress);
    readonly grad_hidden_ptr = this.bind("grad_hidden_ptr", toAddress);
    readonly grad_state_ptr = this.bind("grad_state_ptr", toAddress);
    readonly grad_squared_norm = this.bind("grad_squared_norm");
    readonly scale_grads = this.bind("scale_grads");
    readonly sgd_update = this.bind("sgd_update");
    readonly adam_update = this.bind("adam_update");
    readonly optimizer_state_ptr = this.bind("optimizer_state_ptr", toAddress);
    readonly optimizer_steps = this.bind("optimizer_steps", toAddress);
    readonly set_optimizer_steps = this.bind("set_optimizer_steps");
  };
}

const BASE64: Record<WasmFlavor, string> = { plain: plainWasmBase64, relaxed: relaxedWasmBase64 };

/** `Uint8Array.fromBase64` where the runtime has it: ~300× faster than `atob` on the module. */
const fromBase64 = (Uint8Array as unknown as {
  fromBase64?: (text: string) => Uint8Array<ArrayBuffer>;
}).fromBase64;

function decode(flavor: WasmFlavor): Uint8Array<ArrayBuffer> {
  return fromBase64?.(BASE64[flavor]) ??
    Uint8Array.from(atob(BASE64[flavor]), (c) => c.charCodeAt(0));
}

let relaxedSupported: boolean | null = null;

/**
 * Whether this runtime accepts the `"relaxed"` build (checked once, with
 * `WebAssembly.validate`); V8 does since 11.4 (Chromium 114).
 *
 * @example
 * ```ts
 * import { supportsRelaxedSimd } from "./bindings.ts";
 * import assert from "node:assert/strict";
 * assert.equal(typeof supportsRelaxedSimd(), "boolean");
 * ```
 */
export function supportsRelaxedSimd(): boolean {
  relaxedSupported ??= WebAssembly.validate(decode("relaxed"));
  return relaxedSupported;
}

function defaultFlavor(flavor: WasmFlavor | undefined): WasmFlavor {
  const chosen = flavor ?? (supportsRelaxedSimd() ? "relaxed" : "plain");
  if (chosen === "relaxed" && !supportsRelaxedSimd()) {
    throw new Error('this runtime has no relaxed SIMD; instantiate the "plain" build');
  }
  return chosen;
}

/**
 * A new instance of one build of the module, with its own memory. Most callers want
 * {@linkcode instantiate}, which shares one instance per thread.
 *
 * @throws {Error} If `flavor` is `"relaxed"` and the runtime does not support it.
 *
 * @example
 * ```ts
 * import { createInstance } from "./bindings.ts";
 * import assert from "node:assert/strict";
 * const module = createInstance("plain");
 * assert.equal(module.flavor, "plain");
 * ```
 */
export function createInstance(flavor?: WasmFlavor): WasmModule {
  const chosen = defaultFlavor(flavor);
  let memory: WebAssembly.Memory | null = null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(decode(chosen)), {
    wbg: {
      __wbindgen_throw(address: number, length: number): never {
        const bytes = new Uint8Array(memory!.buffer, toAddress(address), length);
        throw new Error(new TextDecoder().decode(bytes));
      },
    },
  });
  const raw = instance.exports as unknown as RawExports;
  memory = raw.memory;
  return {
    flavor: chosen,
    Cell: cellClass(raw),
    Trainer: trainerClass(raw),
    TorchCell: torchCellClass(raw),
    calibrateGemm: (rows, depth, blocks, repeats) =>
      raw.calibrate_gemm(rows, depth, blocks, repeats),
    memory,
  };
}

const instances: Partial<Record<WasmFlavor, WasmModule>> = {};

/**
 * This thread's instance of one build of the module (created on first use; later calls return
 * the same instance). By default the relaxed build where the runtime supports it, else the plain
 * one.
 *
 * @throws {Error} If `flavor` is `"relaxed"` and the runtime does not support it.
 *
 * @example
 * ```ts
 * import { instantiate } from "./bindings.ts";
 * import assert from "node:assert/strict";
 * assert.equal(instantiate("plain"), instantiate("plain"));
 * ```
 */
export function instantiate(flavor?: WasmFlavor): WasmModule {
  const chosen = defaultFlavor(flavor);
  instances[chosen] ??= createInstance(chosen);
  return instances[chosen];
}
