/**
 * The WebAssembly backend: Rust kernels (`wasm/src`) built for `wasm32` with SIMD, shipped inside
 * the package as `wasm/arraylstm_wasm.generated.ts`, so using it needs no Rust and no network.
 *
 * A runner packs the weights once into wasm memory and runs whole sequences per call. Large
 * batches are split by rows over Workers, each with its own instance and copy of the weights; a
 * batch too small for that but with enough work per step (batch 1 at 256 units) shares its hidden
 * units between the calling thread and one Worker, step by step (`shared_units.ts`); small calls
 * (and runtimes without `Worker`) run in the calling thread. Training (`runTraining`) runs
 * the Rust `Trainer` the same way: each thread records and back-propagates its rows, and the
 * parameter gradients of the rows are summed here. LRP's relevance pass (`runRelevance`, one-lane
 * cells) runs on the same recording forward, split the same way. Workers are pooled per backend,
 * so a runner made after an optimizer step re-packs its weights in running workers instead of
 * starting new ones.
 *
 * Two builds of the kernels ship: one whose multiply-adds use relaxed SIMD's `f32x4.relaxed_madd`
 * (fused on CPUs with FMA), taken where the runtime validates it, and a plain SIMD one for the rest.
 *
 * The files: `backend.ts` (the constructor and options), `runner.ts` (a compiled cell: where each
 * call runs), `scheduler.ts` (the thresholds that decide it), `rows.ts` (batch slices in and out),
 * `thread.ts` / `worker.ts` / `protocol.ts` (the workers and their messages), `shared_units.ts`
 * (hidden units shared by two threads), `kernel.ts` / `train_kernel.ts` / `bindings.ts` (the
 * Rust module's classes), `memory_plan.ts` (what fits in wasm memory).
 *
 * @module
 */

export { createWasmBackend, wasmBackend, type WasmBackendOptions } from "./backend.ts";
export { WASM_MEMORY_LIMITS, type WasmMemoryLimits } from "./memory_plan.ts";
