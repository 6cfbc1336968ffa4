/**
 * Finding, verifying and opening the native library: the package's prebuilt file for this
 * platform (`native/lib/`), checked against the SHA-256 pinned in `pinned.ts` before
 * `Deno.dlopen`, or the file `ARRAYLSTM_NATIVE_LIB` names. Never prompts: every permission is
 * checked with `Deno.permissions.querySync` first.
 *
 * On x86-64 the package carries one library per instruction-set level: the baseline (SSE2, every
 * x86-64 CPU) answers `alstm_cpu_level`, and the `x86-64-v3` (AVX2 + FMA) or `x86-64-v4`
 * (AVX-512) build is opened instead where the CPU has it and the package carries it.
 *
 * A library named by `ARRAYLSTM_NATIVE_LIB` is trusted as it is (no hash: it is the user's own
 * build, e.g. for a platform the package carries nothing for); it must still report this ABI.
 *
 * @module
 */

import { PINNED_SHA256 } from "./pinned.ts";
import { ABI_VERSION, type NativeSymbols, SYMBOLS } from "./symbols.ts";

/** An opened native library. */
export interface NativeLibrary {
  /** Its functions. */
  readonly symbols: NativeSymbols;
  /** The file opened. */
  readonly path: string;
  /** The instruction set its kernels use: `"sse2"`, `"avx2"`, `"avx512"`, `"neon"`, `"portable"`. */
  readonly isa: string;
}

const ISA_NAMES = ["portable", "sse2", "avx2", "avx512", "neon"];

/** The library files of this platform, baseline first, or `null` where none is built. */
function platformFiles(): { baseline: string; levels: Record<number, string> } | null {
  const { os, arch } = Deno.build;
  if (os === "linux" && arch === "x86_64") {
    return {
      baseline: "libarraylstm-linux-x86_64.so",
      levels: { 2: "libarraylstm-linux-x86_64-v3.so", 3: "libarraylstm-linux-x86_64-v4.so" },
    };
  }
  if (os === "linux" && arch === "aarch64") {
    return { baseline: "libarraylstm-linux-aarch64.so", levels: {} };
  }
  return null;
}

/**
 * The file name of the package's baseline library for this platform, or `null` where the
 * package carries none.
 *
 * @example
 * ```ts
 * import { baselineLibraryName } from "./library.ts";
 * console.log(baselineLibraryName()); // "libarraylstm-linux-x86_64.so" on Linux x86-64
 * ```
 */
export function baselineLibraryName(): string | null {
  return platformFiles()?.baseline ?? null;
}

/** The package's `native/lib/` folder as a local path, or `null` when loaded from a URL. */
function libraryFolder(): string | null {
  const url = new URL("../../../native/lib/", import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : null;
}

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync?.(descriptor).state === "granted";
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The package's file `name`, verified against its pinned hash; throws saying what is wrong. */
async function verifiedPath(folder: string, name: string): Promise<string> {
  const path = folder + name;
  if (!granted({ name: "read", path })) {
    throw new Error(`reading ${path} needs --allow-read`);
  }
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new Error(
      `${path} is missing: build it with \`deno task build:native\` (rustup's cargo)`,
    );
  }
  const pinned = PINNED_SHA256[name];
  const actual = await sha256(bytes);
  if (pinned !== actual) {
    throw new Error(
      `${path} has SHA-256 ${actual}, but the package pins ${pinned ?? "none"}: rebuild it ` +
        "with `deno task build:native`, or name your own build with ARRAYLSTM_NATIVE_LIB",
    );
  }
  return path;
}

function open(path: string): NativeLibrary {
  const library = Deno.dlopen(path, SYMBOLS);
  const abi = library.symbols.alstm_abi_version();
  if (abi !== ABI_VERSION) {
    library.close();
    throw new Error(
      `${path} has ABI revision ${abi}, this package needs ${ABI_VERSION}: rebuild it with ` +
        "`deno task build:native`",
    );
  }
  const isa = ISA_NAMES[library.symbols.alstm_isa()] ?? "unknown";
  return { symbols: library.symbols, path, isa };
}

async function openLibrary(): Promise<NativeLibrary> {
  if (!granted({ name: "ffi" })) {
    throw new Error("it needs the FFI permission: run with --allow-ffi (or -A)");
  }
  const named = granted({ name: "env", variable: "ARRAYLSTM_NATIVE_LIB" })
    ? Deno.env.get("ARRAYLSTM_NATIVE_LIB")
    : undefined;
  if (named) return open(named);
  const files = platformFiles();
  const folder = libraryFolder();
  if (files === null) {
    throw new Error(
      `the package carries no library for ${Deno.build.os}-${Deno.build.arch}: build one with ` +
        "`deno task build:native` and name it with ARRAYLSTM_NATIVE_LIB",
    );
  }
  if (folder === null) {
    throw new Error(
      "the package was loaded from a URL, and a library must be a local file: download " +
        `${files.baseline} and name it with ARRAYLSTM_NATIVE_LIB`,
    );
  }
  const baseline = open(await verifiedPath(folder, files.baseline));
  const level = baseline.symbols.alstm_cpu_level();
  for (let wanted = level; wanted >= 2; wanted--) {
    const name = files.levels[wanted];
    if (name === undefined || PINNED_SHA256[name] === undefined) continue;
    try {
      const better = open(await verifiedPath(folder, name));
      return better;
    } catch {
      // A level the package lacks here: the next lower one, down to the baseline.
    }
  }
  return baseline;
}

let opened: Promise<NativeLibrary> | null = null;

/**
 * The native library, opened once per process (later calls return the same promise).
 *
 * @throws {Error} Saying why the library cannot be opened here (no FFI permission, no file for
 * this platform, a hash that does not match) and what to do.
 *
 * @example
 * ```ts ignore
 * import { openNativeLibrary } from "./library.ts";
 * const { isa } = await openNativeLibrary();
 * console.log(isa); // "avx2" on a CPU with AVX2 and FMA
 * ```
 */
export function openNativeLibrary(): Promise<NativeLibrary> {
  opened ??= openLibrary();
  return opened;
}

/**
 * Whether the native library opens here, without prompting for any permission.
 *
 * @example
 * ```ts
 * import { nativeLibraryAvailable } from "./library.ts";
 * console.log(await nativeLibraryAvailable()); // false without --allow-ffi
 * ```
 */
export async function nativeLibraryAvailable(): Promise<boolean> {
  if (!granted({ name: "ffi" })) return false;
  try {
    await openNativeLibrary();
    return true;
  } catch {
    return false;
  }
}
