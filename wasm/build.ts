/**
 * Rebuilds the WASM backend's shipped modules from the Rust sources:
 * `cargo build` (Debian's rustc for `wasm32-unknown-unknown` with `simd128`) → `wasm-bindgen`
 * 0.2.83 → `wasm/arraylstm_wasm.generated.ts` (the modules as base64 only, the way the Deno standard
 * library ships its wasm). wasm-bindgen's JavaScript glue is not shipped: the typed API is the
 * hand-written `src/backends/wasm/bindings.ts`, and every build is checked against the raw
 * interface it calls (`wasm/abi.ts`).
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

import { abiMismatch } from "./abi.ts";

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

/** The generated file's header line about one module. */
async function describe(name: string, wasm: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", wasm));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `// ${name} wasm: ${wasm.length} bytes, sha256 ${hex}`;
}

/**
 * The generated module: the two builds' bytes as base64, nothing else. The typed API over them is
 * `src/backends/wasm/bindings.ts`; each module is first checked against the raw interface those
 * bindings call (`wasm/abi.ts`).
 */
async function generate(
  plain: Uint8Array<ArrayBuffer>,
  relaxed: Uint8Array<ArrayBuffer>,
): Promise<string> {
  for (const [name, bytes] of [["plain", plain], ["relaxed", relaxed]] as const) {
    const mismatch = abiMismatch(new WebAssembly.Module(bytes));
    if (mismatch !== null) {
      throw new Error(
        `the ${name} module's interface changed (${mismatch}): update wasm/abi.ts ` +
          "and bindings.ts to match wasm/src/lib.rs",
      );
    }
  }
  return `// @generated by wasm/build.ts from wasm/src (wasm-bindgen ${WASM_BINDGEN_VERSION}); do not edit.
// deno-fmt-ignore-file
${await describe("plain", plain)}
${await describe("relaxed", relaxed)}

/**
 * The WASM module's bytes, base64: the typed API over them is \`src/backends/wasm/bindings.ts\`.
 *
 * @module
 */

/** The plain SIMD build. */
export const plainWasmBase64: string = "${encodeBase64(plain)}";

/** The build with \`f32x4.relaxed_madd\`. */
export const relaxedWasmBase64: string = "${encodeBase64(relaxed)}";
`;
}

async function main(): Promise<void> {
  const check = Deno.args.includes("--check");
  const work = await Deno.makeTempDir({ prefix: "arraylstm-wasm-" });
  let keepWork = false;
  try {
    // --check builds from scratch, so stale artefacts in wasm/target cannot hide a difference.
    const targetDir = check ? `${work}/target` : `${CRATE_DIR}/target`;
    // Two single-threaded LTO builds: side by side, they take the time of one on two cores. Each
    // gets its own folder under an existing one: cargo creates a missing target folder by renaming
    // a fresh one into place, which would sweep away a build running inside it.
    await Deno.mkdir(targetDir, { recursive: true });
    const [plainPath, markedPath] = await Promise.all([
      cargoBuild(`${targetDir}/plain`, []),
      cargoBuild(`${targetDir}/relaxed-madd`, ["relaxed_madd"]),
    ]);
    const plain = await bindgen(plainPath, `${work}/plain`);
    const marked = await bindgen(markedPath, `${work}/marked`);
    if (marked.glue !== plain.glue) {
      throw new Error("the two builds got different wasm-bindgen glue; they must export the same");
    }
    const relaxed = await relaxMadd(marked.wasm, work);
    const generated = await generate(plain.wasm, relaxed);
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
