/**
 * Rebuilds the WASM backend's shipped module from the Rust sources:
 * `cargo build` (Debian's rustc for `wasm32-unknown-unknown` with `simd128`) → `wasm-bindgen`
 * 0.2.83 → `wasm/arraylstm_wasm.generated.ts` (the module as base64 plus the wasm-bindgen glue,
 * with a typed export), the way the Deno standard library ships its wasm.
 *
 * No `wasm-opt` pass: binaryen's `-O3` re-inlines the kernels and made the batch-1 path twice as
 * slow under V8 (0.045 → 0.087 ms per step, LSTM latency case); LLVM's output is already tight.
 *
 * The build is deterministic (pinned toolchain and crates, remapped paths), so CI rebuilds and
 * compares bytes:
 *
 * ```sh
 * deno task build:wasm          # regenerate wasm/arraylstm_wasm.generated.ts
 * deno task build:wasm:check    # rebuild in a temporary directory, fail if the bytes differ
 * ```
 *
 * Tools, overridable by environment variables: `CARGO` (default `/usr/bin/cargo`), `RUSTC`
 * (`/usr/bin/rustc`), `WASM_BINDGEN` (`wasm-bindgen` on `PATH` or in `~/.cargo/bin`).
 * `wasm/ci.sh` installs them on Debian bookworm.
 *
 * @module
 */

const CRATE_DIR = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
const GENERATED = `${CRATE_DIR}/arraylstm_wasm.generated.ts`;
const WASM_BINDGEN_VERSION = "0.2.83";

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Runs a tool, failing with its output when it fails; returns its stdout. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cmd, { args, env, cwd: CRATE_DIR }).output();
  } catch (error) {
    throw new Error(`cannot run ${cmd}: ${(error as Error).message} (see wasm/ci.sh)`);
  }
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed:\n${decoder.decode(output.stdout)}${
        decoder.decode(output.stderr)
      }`,
    );
  }
  return decoder.decode(output.stdout);
}

function findWasmBindgen(): string {
  const fromEnv = Deno.env.get("WASM_BINDGEN");
  if (fromEnv) return fromEnv;
  const candidates = [
    ...(Deno.env.get("PATH") ?? "").split(":").map((dir) => `${dir}/wasm-bindgen`),
    `${Deno.env.get("HOME")}/.cargo/bin/wasm-bindgen`,
  ];
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here; try the next one
    }
  }
  return "wasm-bindgen";
}

/** Compiles the crate; returns the path of the raw `.wasm`. */
async function cargoBuild(targetDir: string): Promise<string> {
  const cargo = Deno.env.get("CARGO") ?? "/usr/bin/cargo";
  const rustc = Deno.env.get("RUSTC") ?? "/usr/bin/rustc";
  const rustflags = [
    "-C target-feature=+simd128",
    // No absolute build paths in the binary: the bytes must not depend on the checkout location.
    `--remap-path-prefix=${CRATE_DIR}=/arraylstm-wasm`,
    `--remap-path-prefix=${targetDir}=/target`,
    "--remap-path-prefix=/usr/share/cargo/registry=/registry",
  ].join(" ");
  await run(cargo, [
    "build",
    "--release",
    "--locked",
    "--offline",
    "--target",
    "wasm32-unknown-unknown",
    "--target-dir",
    targetDir,
  ], { RUSTC: rustc, RUSTFLAGS: rustflags, CARGO_INCREMENTAL: "0" });
  return `${targetDir}/wasm32-unknown-unknown/release/arraylstm_wasm.wasm`;
}

/** Runs wasm-bindgen (exactly 0.2.83, the crate's version); returns the glue and the module. */
async function bindgen(
  wasmPath: string,
  outDir: string,
): Promise<{ glue: string; wasm: Uint8Array<ArrayBuffer> }> {
  const wasmBindgen = findWasmBindgen();
  const version = (await run(wasmBindgen, ["--version"])).trim();
  if (version !== `wasm-bindgen ${WASM_BINDGEN_VERSION}`) {
    throw new Error(
      `${wasmBindgen} is "${version}", but the crate pins wasm-bindgen ${WASM_BINDGEN_VERSION}; ` +
        "install it with wasm/ci.sh or point WASM_BINDGEN at it",
    );
  }
  await run(wasmBindgen, ["--target", "web", "--no-typescript", "--out-dir", outDir, wasmPath]);
  return {
    glue: await Deno.readTextFile(`${outDir}/arraylstm_wasm.js`),
    wasm: await Deno.readFile(`${outDir}/arraylstm_wasm_bg.wasm`),
  };
}

/** Cuts `text` from the first `start` up to (not including) `end`, or to the end of the text. */
function cut(text: string, start: string, end: string | null): string {
  const from = text.indexOf(start);
  const to = end === null ? text.length : text.indexOf(end, from);
  if (from < 0 || to < 0) {
    throw new Error(`wasm-bindgen's glue changed: cannot find ${JSON.stringify(start)}`);
  }
  return text.slice(0, from) + text.slice(to);
}

/** Replaces exactly one occurrence of `from`, failing loudly if the glue changed shape. */
function replaceOnce(text: string, from: string, to: string): string {
  const parts = text.split(from);
  if (parts.length !== 2) {
    throw new Error(`wasm-bindgen's glue changed: expected ${JSON.stringify(from)} exactly once`);
  }
  return parts.join(to);
}

/**
 * The generated module: wasm-bindgen's `--target web` glue, minus its fetch-based loader (the
 * bytes are inline; nothing is fetched) and its untyped exports, plus a typed `instantiate()`.
 */
async function generate(glue: string, wasm: Uint8Array<ArrayBuffer>): Promise<string> {
  let body = cut(glue, "async function load(", "function getImports()");
  body = cut(body, "async function init(input)", null);
  body = replaceOnce(body, "export class Cell {", "class Cell {");
  body = replaceOnce(body, "export function calibrate_gemm(", "function calibrate_gemm(");
  body = replaceOnce(body, "    init.__wbindgen_wasm_module = module;\n", "");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", wasm));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `// @generated by wasm/build.ts from wasm/src (wasm-bindgen ${WASM_BINDGEN_VERSION}); do not edit.
// @ts-nocheck: generated (wasm-bindgen's JavaScript glue); the exports at the end are typed.
// deno-lint-ignore-file
// deno-fmt-ignore-file
// wasm: ${wasm.length} bytes, sha256 ${hex}
${body.trim()}

/** A compiled cell in wasm memory (\`Cell\` of wasm/src/lib.rs). */
export interface WasmCell {
  /** Runs \`seqLen\` steps of \`batch\` sequences; the results stay in wasm memory. */
  forward(
    batch: number,
    seqLen: number,
    x: Float32Array,
    hidden: Float32Array,
    state: Float32Array,
  ): void;
  /** Byte address of the last call's output \`(B, T, H)\`. */
  output_ptr(): number;
  /** Byte address of the last call's final hidden state \`(B, H)\`. */
  hidden_ptr(): number;
  /** Byte address of the last call's final cell states \`(k, B, H)\`. */
  state_ptr(): number;
  /** Frees the cell's weights and buffers; the object is unusable afterwards. */
  free(): void;
}

/** Packs a cell's PyTorch-layout parameters (\`kind\`: 0 LSTM, 1 array, 2 attention, 3 stochastic). */
export interface WasmCellConstructor {
  /** Copies the parameters into wasm memory and packs them; the arrays are only read. */
  new (
    kind: number,
    k: number,
    maxPooling: boolean,
    inputSize: number,
    hiddenSize: number,
    i2hWeight: Float32Array,
    i2hBias: Float32Array,
    h2hWeight: Float32Array,
    h2hBias: Float32Array,
    i2aWeight: Float32Array,
    i2aBias: Float32Array,
  ): WasmCell;
}

/** The instantiated module of this thread. */
export interface WasmModule {
  /** The cell class. */
  readonly Cell: WasmCellConstructor;
  /**
   * Runs the bare GEMM micro-kernel \`repeats\` times on a \`(rows, depth) · (depth, 16 · blocks)\`
   * product and returns one element of it: time it for the GEMM rate of this machine.
   */
  readonly calibrateGemm: (rows: number, depth: number, blocks: number, repeats: number) => number;
  /** The module's memory, where the results are read. */
  readonly memory: WebAssembly.Memory;
}

const WASM_BASE64 = "${encodeBase64(wasm)}";

let instantiated: WasmModule | null = null;

/**
 * Compiles and instantiates the module (once per thread; later calls return the same instance).
 *
 * @example
 * \`\`\`ts
 * import { instantiate } from "./arraylstm_wasm.generated.ts";
 * const { memory } = instantiate();
 * \`\`\`
 */
export function instantiate(): WasmModule {
  if (instantiated === null) {
    const bytes = Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0));
    initSync(bytes);
    instantiated = { Cell, calibrateGemm: calibrate_gemm, memory: wasm.memory };
  }
  return instantiated;
}
`;
}

async function main(): Promise<void> {
  const check = Deno.args.includes("--check");
  const work = await Deno.makeTempDir({ prefix: "arraylstm-wasm-" });
  let keepWork = false;
  try {
    // --check builds from scratch, so stale artefacts in wasm/target cannot hide a difference.
    const targetDir = check ? `${work}/target` : `${CRATE_DIR}/target`;
    const wasmPath = await cargoBuild(targetDir);
    const { glue, wasm } = await bindgen(wasmPath, `${work}/bindgen`);
    const generated = await generate(glue, wasm);
    if (!check) {
      await Deno.writeTextFile(GENERATED, generated);
      console.log(`wrote ${GENERATED} (${wasm.length} bytes of wasm)`);
      return;
    }
    const committed = await Deno.readTextFile(GENERATED).catch(() => "");
    if (committed !== generated) {
      await Deno.writeTextFile(`${work}/arraylstm_wasm.generated.ts`, generated);
      keepWork = true;
      console.error(
        `wasm/arraylstm_wasm.generated.ts is not what the sources build (rebuilt copy kept in ${work}); ` +
          "run `deno task build:wasm` and commit the result",
      );
      Deno.exitCode = 1;
      return;
    }
    console.log(`wasm/arraylstm_wasm.generated.ts matches a rebuild from source`);
  } finally {
    if (!keepWork) await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await main();
