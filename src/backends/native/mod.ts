/**
 * The native backend: the Rust kernels of `wasm/src` built for the host CPU as a shared library
 * (`native/`), loaded with `Deno.dlopen`. Needs `--allow-ffi`; see `docs/design/native.md`.
 *
 * A runner packs the weights once per thread in native memory and runs whole sequences per
 * call; large batches are split by rows over native threads (no Workers, no copies between
 * threads), and large calls run on a thread of Deno's pool so the event loop stays free. Training
 * (`runTraining`), the optimizer step where the weights live (`resident`) and LRP's relevance pass
 * (`runRelevance`, one-lane cells) run in the same library.
 *
 * The files: `registration.ts` (the name, `"auto"`'s check, loading), `library.ts` (finding,
 * verifying and opening the library), `pinned.ts` (the libraries' SHA-256, written by
 * `deno task build:native`), `symbols.ts` (the C ABI), `backend.ts`, `runner.ts`, `kernel.ts`,
 * `train_kernel.ts`.
 *
 * @module
 */

export { createNativeBackend, type NativeBackendOptions } from "./backend.ts";
export { nativeLibraryAvailable, openNativeLibrary } from "./library.ts";
