/**
 * Rebuilds the WASM backend's shipped modules from the Rust sources:
 * `cargo build` (Debian's rustc for `wasm32-unknown-unknown` with `simd128`) → `wasm-bindgen`
 * 0.2.83 → `wasm/arraylstm_wasm.generated.ts` (the modules as base64 plus the wasm-bindgen glue,
 * with a typed export), the way the Deno standard library ships its wasm.
 *
 * Two modules, from the same sources: "plain", and "relaxed", whose GEMM micro-kernel and `exp`
 * multiply and add with relaxed SIMD's `f32x4.relaxed_madd` (fused where the CPU has FMA: about
 * 1.5× the GEMM rate). Rust 1.63 cannot emit that instruction, so the crate is built a second time
 * with `--cfg relaxed_madd`, where `madd` calls an exported marker function instead
 * (`wasm/src/math.rs`), and this script swaps every call for the instruction: `wasm2wat` → text
 * rewrite → `wat2wasm` (wabt 1.0.32). It fails if the marker or its calls are missing, so a
 * compiler change cannot silently ship a relaxed module without relaxed SIMD. At run time the
 * relaxed module is used where `WebAssembly.validate` accepts it, the plain one elsewhere.
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
 * (`/usr/bin/rustc`), `WASM_BINDGEN` (`wasm-bindgen` on `PATH` or in `~/.cargo/bin`), `WASM2WAT`
 * and `WAT2WASM` (on `PATH`). `wasm/ci.sh` installs them on Debian bookworm.
 *
 * @module
 */

const CRATE_DIR = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
const GENERATED = `${CRATE_DIR}/arraylstm_wasm.generated.ts`;
const WASM_BINDGEN_VERSION = "0.2.83";
/** wabt's text format is the rewrite's intermediate: pinned like the compiler, for exact bytes. */
const WABT_VERSION = "1.0.32";
/** Export name of the stand-in for `f32x4.relaxed_madd` (`wasm/src/math.rs`). */
const MARKER = "relaxed_madd_marker";

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

/** Compiles the crate with `cfgs` set; returns the path of the raw `.wasm`. */
async function cargoBuild(targetDir: string, cfgs: string[]): Promise<string> {
  const cargo = Deno.env.get("CARGO") ?? "/usr/bin/cargo";
  const rustc = Deno.env.get("RUSTC") ?? "/usr/bin/rustc";
  const rustflags = [
    "-C target-feature=+simd128",
    ...cfgs.map((cfg) => `--cfg ${cfg}`),
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

/**
 * The `--cfg relaxed_madd` build with every `call` of the marker replaced by
 * `f32x4.relaxed_madd` (same operands, same order: `a · b + c`), and the marker and its export
 * deleted. Throws if there is nothing to replace or a reference to the marker would remain.
 */
async function relaxMadd(marked: Uint8Array, work: string): Promise<Uint8Array<ArrayBuffer>> {
  const wasm2wat = Deno.env.get("WASM2WAT") ?? "wasm2wat";
  const wat2wasm = Deno.env.get("WAT2WASM") ?? "wat2wasm";
  for (const tool of [wasm2wat, wat2wasm]) {
    const version = (await run(tool, ["--version"])).trim();
    if (version !== WABT_VERSION) {
      throw new Error(
        `${tool} is wabt ${version}, but the build pins wabt ${WABT_VERSION} (see wasm/ci.sh)`,
      );
    }
  }
  await Deno.writeFile(`${work}/marked.wasm`, marked);
  // Symbolic names: deleting the marker function then renumbers every index consistently.
  await run(wasm2wat, ["--generate-names", `${work}/marked.wasm`, "-o", `${work}/marked.wat`]);
  const lines = (await Deno.readTextFile(`${work}/marked.wat`)).split("\n");
  const exportPattern = new RegExp(`^  \\(export "${MARKER}" \\(func (\\$[\\w.]+)\\)\\)$`);
  const exportLine = lines.findIndex((line) => exportPattern.test(line));
  if (exportLine < 0) {
    throw new Error(`the relaxed_madd build exports no ${MARKER}: see wasm/src/math.rs`);
  }
  const name = lines[exportLine].match(exportPattern)![1];
  // A top-level field starts at two spaces of indentation; the function ends where the next starts.
  const start = lines.findIndex((line) => line.startsWith(`  (func ${name} `));
  const end = lines.findIndex((line, i) => i > start && /^ {2}\(/.test(line));
  if (start < 0 || end < 0) throw new Error(`wasm2wat printed no function ${name}`);
  let calls = 0;
  const rewritten = lines.filter((_, i) => i !== exportLine && (i < start || i >= end))
    .map((line) => {
      const indent = line.match(/^ */)![0];
      if (line !== `${indent}call ${name}`) return line;
      calls++;
      return `${indent}f32x4.relaxed_madd`;
    });
  const leftover = rewritten.some((line) => line.split(/[\s()]+/).includes(name));
  if (calls === 0 || leftover) {
    const problem = calls === 0 ? "is never called" : "is referenced other than by `call`";
    throw new Error(
      `${MARKER} ${problem} in the relaxed_madd build: it would not be the module that ` +
        "wasm/src/math.rs asks for",
    );
  }
  await Deno.writeTextFile(`${work}/relaxed.wat`, rewritten.join("\n"));
  await run(wat2wasm, [
    "--enable-relaxed-simd",
    `${work}/relaxed.wat`,
    "-o",
    `${work}/relaxed.wasm`,
  ]);
  const relaxed = await Deno.readFile(`${work}/relaxed.wasm`);
  if (!WebAssembly.validate(relaxed)) {
    throw new Error("the relaxed module does not validate in this Deno");
  }
  return relaxed;
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

/** The generated file's header line about one module. */
async function describe(name: string, wasm: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", wasm));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `// ${name} wasm: ${wasm.length} bytes, sha256 ${hex}`;
}

/**
 * The generated module: wasm-bindgen's `--target web` glue, minus its fetch-based loader (the
 * bytes are inline; nothing is fetched) and its untyped exports, inside a function so that each
 * of the two modules gets its own copy of the glue's state; plus a typed `instantiate()`.
 */
async function generate(
  glue: string,
  plain: Uint8Array<ArrayBuffer>,
  relaxed: Uint8Array<ArrayBuffer>,
): Promise<string> {
  let body = cut(glue, "async function load(", "function getImports()");
  body = cut(body, "async function init(input)", null);
  body = replaceOnce(body, "export class Cell {", "class Cell {");
  body = replaceOnce(body, "export function calibrate_gemm(", "function calibrate_gemm(");
  body = replaceOnce(body, "    init.__wbindgen_wasm_module = module;\n", "");
  return `// @generated by wasm/build.ts from wasm/src (wasm-bindgen ${WASM_BINDGEN_VERSION}); do not edit.
// @ts-nocheck: generated (wasm-bindgen's JavaScript glue); the exports at the end are typed.
// deno-lint-ignore-file
// deno-fmt-ignore-file
${await describe("plain", plain)}
${await describe("relaxed", relaxed)}

/** wasm-bindgen's glue around a new instance of \`bytes\`. */
function bind(bytes, flavor) {
${body.trim()}

initSync(bytes);
return { Cell, calibrateGemm: calibrate_gemm, memory: wasm.memory, flavor };
}

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

/**
 * The two builds of the kernels: \`"relaxed"\` multiply-adds in the GEMM and \`exp\` with relaxed
 * SIMD's \`f32x4.relaxed_madd\` (fused where the CPU has FMA, so its last bits depend on the CPU);
 * \`"plain"\` uses only SIMD 1.0, for runtimes without relaxed SIMD.
 */
export type WasmFlavor = "plain" | "relaxed";

/** The instantiated module of this thread. */
export interface WasmModule {
  /** Which build this is. */
  readonly flavor: WasmFlavor;
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

const BASE64: Record<WasmFlavor, string> = {
  plain: "${encodeBase64(plain)}",
  relaxed: "${encodeBase64(relaxed)}",
};

function decode(flavor: WasmFlavor): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(BASE64[flavor]), (c) => c.charCodeAt(0));
}

let relaxedSupported: boolean | null = null;

/**
 * Whether this runtime accepts the \`"relaxed"\` build (checked once, with
 * \`WebAssembly.validate\`); V8 does since 11.4 (Chromium 114).
 *
 * @example
 * \`\`\`ts
 * import { supportsRelaxedSimd } from "./arraylstm_wasm.generated.ts";
 * console.log(supportsRelaxedSimd() ? "relaxed" : "plain");
 * \`\`\`
 */
export function supportsRelaxedSimd(): boolean {
  relaxedSupported ??= WebAssembly.validate(decode("relaxed"));
  return relaxedSupported;
}

const instances: Partial<Record<WasmFlavor, WasmModule>> = {};

/**
 * Compiles and instantiates one build of the module (once per thread and build; later calls
 * return the same instance). By default the relaxed build where the runtime supports it, else the
 * plain one.
 *
 * @throws {Error} If \`flavor\` is \`"relaxed"\` and the runtime does not support it.
 *
 * @example
 * \`\`\`ts
 * import { instantiate } from "./arraylstm_wasm.generated.ts";
 * const { flavor, memory } = instantiate();
 * \`\`\`
 */
export function instantiate(
  flavor: WasmFlavor = supportsRelaxedSimd() ? "relaxed" : "plain",
): WasmModule {
  if (flavor === "relaxed" && !supportsRelaxedSimd()) {
    throw new Error("this runtime has no relaxed SIMD; instantiate the \\"plain\\" build");
  }
  instances[flavor] ??= bind(decode(flavor), flavor);
  return instances[flavor];
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
    // Two single-threaded LTO builds: side by side, they take the time of one on two cores.
    const [plainPath, markedPath] = await Promise.all([
      cargoBuild(targetDir, []),
      cargoBuild(`${targetDir}/relaxed-madd`, ["relaxed_madd"]),
    ]);
    const plain = await bindgen(plainPath, `${work}/plain`);
    const marked = await bindgen(markedPath, `${work}/marked`);
    if (marked.glue !== plain.glue) {
      throw new Error("the two builds got different wasm-bindgen glue; they must export the same");
    }
    const relaxed = await relaxMadd(marked.wasm, work);
    const generated = await generate(plain.glue, plain.wasm, relaxed);
    if (!check) {
      await Deno.writeTextFile(GENERATED, generated);
      console.log(
        `wrote ${GENERATED} (${plain.wasm.length} + ${relaxed.length} bytes of wasm)`,
      );
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
