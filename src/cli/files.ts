/**
 * Output files: checked before any work starts (a directory, a missing folder, a read-only place,
 * an existing file, an input about to be overwritten), and written atomically (a temporary file in
 * the same folder, flushed to disk, renamed over the target), so a crash or a full disk never
 * leaves a half-written file where a good one was.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { CliError, reason } from "./io.ts";

/** One output of a command and the flag that names it. */
export interface OutputFile {
  /** The path given. */
  path: string;
  /** The flag, for messages: `--out`, `--plot`. */
  flag: string;
}

/** Options of {@linkcode checkOutputs}. */
export interface CheckOutputsOptions {
  /** Input files (flag and path) that no output may name. */
  inputs?: readonly OutputFile[];
  /** Whether an existing file may be replaced. */
  overwrite?: boolean;
  /** Existing outputs that may be replaced anyway (the checkpoint a run resumes from). */
  replaceable?: readonly string[];
  /** What to suggest for an existing file, after `--overwrite`. */
  existingHint?: string;
}

/** The real path of `path`, or of its folder joined with its name when it does not exist yet. */
async function realPathOf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    try {
      return join(await Deno.realPath(dirname(resolve(path))), basename(path));
    } catch {
      return resolve(path);
    }
  }
}

/**
 * Checks every output before any work: each must be a file name in an existing, writable folder,
 * must not be one of the inputs (compared by real path, so `./data.txt` and a link to it count),
 * and must not exist unless `overwrite` (or it is `replaceable`). Throws a one-line `CliError`
 * naming the flag and what to do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutputs } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/data.txt`, "abc");
 * const out = { flag: "--out", path: `${dir}/data.txt` };
 * const inputs = [{ flag: "--data", path: `${dir}/data.txt` }];
 * await assert.rejects(checkOutputs([out], { inputs, overwrite: true }), /--out .* is the --data file/);
 * await checkOutputs([{ flag: "--out", path: `${dir}/m.safetensors` }], { inputs });
 * ```
 */
export async function checkOutputs(
  outputs: readonly OutputFile[],
  options: CheckOutputsOptions = {},
): Promise<void> {
  const inputs = await Promise.all(
    (options.inputs ?? []).map(async (input) => ({ ...input, real: await realPathOf(input.path) })),
  );
  const replaceable = await Promise.all((options.replaceable ?? []).map(realPathOf));
  const seen = new Map<string, string>();
  for (const { path, flag } of outputs) {
    const where = `${flag} ${path}`;
    if (path === "" || path.endsWith("/")) {
      throw new CliError(`${where} is not a file name; name a file, e.g. model.safetensors`);
    }
    let info: Deno.FileInfo | null = null;
    try {
      info = await Deno.stat(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new CliError(`${where} cannot be checked: ${reason(error)}`);
      }
    }
    if (info?.isDirectory) {
      throw new CliError(`${where} is a folder; name a file in it, e.g. ${join(path, "model")}`);
    }
    const folder = dirname(resolve(path));
    try {
      if (!(await Deno.stat(folder)).isDirectory) throw new Deno.errors.NotFound();
    } catch {
      throw new CliError(`${where}: the folder ${folder} does not exist; create it first`);
    }
    await checkWritable(folder, where);
    const real = await realPathOf(path);
    const input = inputs.find((i) => i.real === real);
    if (input !== undefined) {
      throw new CliError(
        `${where} is the ${input.flag} file; writing it would destroy the input: choose another name`,
      );
    }
    const other = seen.get(real);
    if (other !== undefined) {
      throw new CliError(`${where} is also ${other}; give each output its own file`);
    }
    seen.set(real, where);
    if (info !== null && !options.overwrite && !replaceable.includes(real)) {
      throw new CliError(
        `${where} exists; pass --overwrite to replace it${options.existingHint ?? ""}`,
      );
    }
  }
}

/** Whether a file can be created in `folder`: the only reliable test is to make one. */
async function checkWritable(folder: string, where: string): Promise<void> {
  const probe = join(folder, `.arraylstm-probe-${Deno.pid}-${crypto.randomUUID()}`);
  try {
    (await Deno.open(probe, { createNew: true, write: true })).close();
  } catch (error) {
    throw new CliError(`${where}: cannot create files in ${folder}: ${reason(error)}`);
  }
  await Deno.remove(probe).catch(() => {});
}

/** Writes bytes into an open file; injectable so tests can make a write fail (a full disk). */
export type FileWriter = (file: Deno.FsFile, data: Uint8Array) => Promise<void>;

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await file.write(data.subarray(written));
}

/**
 * Writes `data` to `path` atomically: into a temporary file beside it, flushed (`fsync`), then
 * renamed over `path`. If anything fails, the temporary file is removed and whatever `path` held
 * before is left as it was. `write` replaces the writing step (tests inject a failing one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeOutput } from "./files.ts";
 * const path = `${await Deno.makeTempDir()}/a.txt`;
 * await writeOutput(path, "old");
 * const full = () => Promise.reject(new Error("No space left on device"));
 * await assert.rejects(writeOutput(path, "new", full), /cannot write .*No space left/);
 * assert.equal(await Deno.readTextFile(path), "old");
 * ```
 */
export async function writeOutput(
  path: string,
  data: Uint8Array | string,
  write: FileWriter = writeAll,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = join(dirname(resolve(path)), `.${basename(path)}.${Deno.pid}.${Date.now()}.tmp`);
  try {
    const file = await Deno.open(temp, { createNew: true, write: true });
    try {
      await write(file, bytes);
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw new CliError(`cannot write ${path}: ${reason(error)}; the previous file is unchanged`);
  }
}

/** `path` with `.last` before its extension: `m.safetensors` → `m.last.safetensors`. */
export function siblingPath(path: string, tag: string): string {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const extension = dot > 0 ? name.slice(dot) : "";
  return join(dirname(path), `${stem}.${tag}${extension}`);
}
