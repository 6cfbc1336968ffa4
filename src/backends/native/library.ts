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
 * A package loaded from a URL (JSR) downloads its library once into a cache folder, checked
 * against the pinned hash before it is written (see `verifiedRemote`).
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

/** The package's `native/lib/` folder: a local path, or the URL it was loaded from. */
function libraryFolder(): { local: string } | { remote: URL } {
  const url = new URL("../../../native/lib/", import.meta.url);
  return url.protocol === "file:" ? { local: decodeURIComponent(url.pathname) } : { remote: url };
}

function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync?.(descriptor).state === "granted";
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Throws unless `bytes` (of file `name`, found at `where`) hash to the pinned SHA-256. */
async function checkPinned(bytes: Uint8Array<ArrayBuffer>, name: string, where: string) {
  const pinned = PINNED_SHA256[name];
  const actual = await sha256(bytes);
  if (pinned !== actual) {
    throw new Error(
      `${where} has SHA-256 ${actual}, but the package pins ${pinned ?? "none"}: rebuild it ` +
        "with `deno task build:native`, or name your own build with ARRAYLSTM_NATIVE_LIB",
    );
  }
}

/** The package's file `name` in a local folder, verified against its pinned hash. */
async function verifiedLocal(folder: string, name: string): Promise<string> {
  const path = folder + name;
  if (!granted({ name: "read", path })) throw new Error(`reading ${path} needs --allow-read`);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new Error(
      `${path} is missing: build it with \`deno task build:native\` (rustup's cargo)`,
    );
  }
  await checkPinned(bytes, name, path);
  return path;
}

/**
 * The package's file `name` from the URL the package was loaded from (JSR, a web server): a
 * `dlopen` needs a local file, so it is downloaded once, checked against its pinned hash before
 * it is written, and kept in `$XDG_CACHE_HOME/arraylstm` (default `~/.cache/arraylstm`) under its
 * hash. Needs the network, read and write permissions for them, already granted (`-A`).
 */
async function verifiedRemote(folder: URL, name: string): Promise<string> {
  const pinned = PINNED_SHA256[name];
  if (pinned === undefined) throw new Error(`the package pins no hash for ${name}`);
  const env = (variable: string) =>
    granted({ name: "env", variable }) ? Deno.env.get(variable) : undefined;
  const base = env("XDG_CACHE_HOME") ?? (env("HOME") ? `${env("HOME")}/.cache` : undefined);
  if (base === undefined) {
    throw new Error(
      "the package was loaded from a URL and there is no cache folder for its library (HOME " +
        "unreadable): download it and name it with ARRAYLSTM_NATIVE_LIB",
    );
  }
  const dir = `${base}/arraylstm`;
  const path = `${dir}/${pinned.slice(0, 16)}-${name}`;
  const url = new URL(name, folder);
  if (!granted({ name: "read", path: dir }) || !granted({ name: "write", path: dir })) {
    throw new Error(`keeping the library in ${dir} needs --allow-read and --allow-write for it`);
  }
  try {
    const cached = await Deno.readFile(path);
    await checkPinned(cached, name, path);
    return path;
  } catch {
    // Not cached yet (or a damaged copy): download it.
  }
  if (!granted({ name: "net", host: url.host })) {
    throw new Error(`downloading ${url} needs --allow-net for ${url.host}`);
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`downloading ${url} failed: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  await checkPinned(bytes, name, url.href);
  await Deno.mkdir(dir, { recursive: true });
  const partial = `${path}.${crypto.randomUUID()}.partial`;
  await Deno.writeFile(partial, bytes);
  await Deno.rename(partial, path);
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
  const verified = (name: string): Promise<string> =>
    "local" in folder ? verifiedLocal(folder.local, name) : verifiedRemote(folder.remote, name);
  const baseline = open(await verified(files.baseline));
  const level = baseline.symbols.alstm_cpu_level();
  for (let wanted = level; wanted >= 2; wanted--) {
    const name = files.levels[wanted];
    if (name === undefined || PINNED_SHA256[name] === undefined) continue;
    try {
      const better = open(await verified(name));
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
