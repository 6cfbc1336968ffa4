/**
 * Builds the native backend's libraries from the Rust sources (`native/Cargo.toml`, whose library
 * root is `wasm/src/lib.rs`: the same kernels as the wasm module) with rustup's cargo, offline,
 * and pins their SHA-256 in `src/backends/native/pinned.ts`.
 *
 * On Linux x86-64 it builds one library per instruction-set level, each with the kernels compiled
 * for that level (`-C target-cpu`): `libarraylstm-linux-x86_64.so` (baseline x86-64: SSE2, runs
 * everywhere, and answers which level the CPU has), `-v3.so` (AVX2 + FMA) and `-v4.so`
 * (AVX-512). Elsewhere one library for the host. The build is deterministic (paths remapped, no
 * timestamps, symbols stripped), so CI rebuilds and compares:
 *
 * ```sh
 * deno task build:native          # rebuild native/lib/ and pin the hashes
 * deno task build:native:check    # rebuild in a temporary directory, fail if a hash differs
 * ```
 *
 * `CARGO` overrides the cargo binary (default `~/.cargo/bin/cargo`, rustup's).
 *
 * @module
 */

const NATIVE_DIR = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
const REPO_DIR = NATIVE_DIR.replace(/\/native$/, "");
const LIB_DIR = `${NATIVE_DIR}/lib`;
const PINNED = `${REPO_DIR}/src/backends/native/pinned.ts`;

/** One library to build: its file name and the `-C target-cpu` it is built for. */
interface Flavour {
  readonly file: string;
  readonly cpu: string | null;
}

function flavours(): Flavour[] {
  const { os, arch } = Deno.build;
  if (os === "linux" && arch === "x86_64") {
    return [
      { file: "libarraylstm-linux-x86_64.so", cpu: "x86-64" },
      { file: "libarraylstm-linux-x86_64-v3.so", cpu: "x86-64-v3" },
      { file: "libarraylstm-linux-x86_64-v4.so", cpu: "x86-64-v4" },
    ];
  }
  if (os === "linux" && arch === "aarch64") {
    return [{ file: "libarraylstm-linux-aarch64.so", cpu: null }];
  }
  const extension = os === "darwin" ? "dylib" : os === "windows" ? "dll" : "so";
  return [{ file: `libarraylstm-${os}-${arch}.${extension}`, cpu: null }];
}

function cargoPath(): string {
  const given = Deno.env.get("CARGO");
  if (given) return given;
  const home = Deno.env.get("HOME");
  const rustup = `${home}/.cargo/bin/cargo`;
  try {
    Deno.statSync(rustup);
    return rustup;
  } catch {
    return "cargo";
  }
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds `flavour` into `targetDir` and returns the library's bytes. */
async function build(flavour: Flavour, targetDir: string): Promise<Uint8Array<ArrayBuffer>> {
  const home = Deno.env.get("HOME") ?? "/root";
  const rustflags = [
    ...(flavour.cpu === null ? [] : ["-C", `target-cpu=${flavour.cpu}`]),
    `--remap-path-prefix=${REPO_DIR}=arraylstm`,
    `--remap-path-prefix=${home}/.cargo=cargo`,
    `--remap-path-prefix=${home}/.rustup=rustup`,
  ].join(" ");
  const output = await new Deno.Command(cargoPath(), {
    args: ["build", "--release", "--offline", "--target-dir", targetDir],
    cwd: NATIVE_DIR,
    env: { RUSTFLAGS: rustflags, SOURCE_DATE_EPOCH: "0", CARGO_INCREMENTAL: "0" },
  }).output();
  if (!output.success) {
    throw new Error(
      `cargo build (${flavour.file}) failed:\n${new TextDecoder().decode(output.stderr)}`,
    );
  }
  const built = Deno.build.os === "darwin"
    ? "libarraylstm.dylib"
    : Deno.build.os === "windows"
    ? "arraylstm.dll"
    : "libarraylstm.so";
  return await Deno.readFile(`${targetDir}/release/${built}`);
}

function pinnedSource(hashes: Record<string, string>): string {
  // One line per key and per hash: a file name and its hash together pass the 100 columns.
  const lines = Object.entries(hashes).map(([file, hash]) => `  "${file}":\n    "${hash}",`);
  return `/**
 * The SHA-256 of every library file the package carries (\`native/lib/\`), checked before
 * \`Deno.dlopen\`. Written by \`deno task build:native\`; do not edit.
 *
 * @module
 */

/** File name → SHA-256 (hex). */
export const PINNED_SHA256: Readonly<Record<string, string>> = {
${lines.join("\n")}
};
`;
}

async function main(check: boolean): Promise<void> {
  const targetBase = check
    ? await Deno.makeTempDir({ prefix: "arraylstm-native-" })
    : `${NATIVE_DIR}/target`;
  const { PINNED_SHA256 } = await import("../src/backends/native/pinned.ts");
  const hashes: Record<string, string> = {};
  for (const flavour of flavours()) {
    const bytes = await build(flavour, `${targetBase}/${flavour.cpu ?? "host"}`);
    hashes[flavour.file] = await sha256(bytes);
    if (check) {
      const pinned = (PINNED_SHA256 as Record<string, string>)[flavour.file];
      let committed = "(missing)";
      try {
        committed = await sha256(await Deno.readFile(`${LIB_DIR}/${flavour.file}`));
      } catch { /* reported below */ }
      if (pinned !== hashes[flavour.file] || committed !== hashes[flavour.file]) {
        console.error(
          `${flavour.file}: the sources build ${hashes[flavour.file]}, pinned ${pinned}, ` +
            `native/lib has ${committed}; run \`deno task build:native\` and commit the result`,
        );
        Deno.exit(1);
      }
    } else {
      await Deno.mkdir(LIB_DIR, { recursive: true });
      await Deno.writeFile(`${LIB_DIR}/${flavour.file}`, bytes);
    }
    console.log(`${flavour.file}: ${bytes.length} bytes, sha256 ${hashes[flavour.file]}`);
  }
  if (check) {
    await Deno.remove(targetBase, { recursive: true });
    console.log("native/lib matches its sources");
  } else {
    await Deno.writeTextFile(PINNED, pinnedSource({ ...PINNED_SHA256, ...hashes }));
  }
}

if (import.meta.main) await main(Deno.args.includes("--check"));
