/**
 * Checks of training data before any work, each a one-line message: binary files, text that is
 * not UTF-8 (with the byte offset), event files that look like raw log lines.
 *
 * @module
 */

import { CliError } from "./io.ts";

/** The text encodings `--encoding` accepts. */
export const ENCODINGS = ["utf-8", "latin1"] as const;
/** One of {@linkcode ENCODINGS}. */
export type Encoding = typeof ENCODINGS[number];

/** Bytes scanned for control characters: enough to tell a binary file, cheap on a large one. */
const SCAN = 1 << 16;

/** Whether `byte` is a control character that text does not hold (tab, newlines, form feed do). */
function isControl(byte: number): boolean {
  return (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c) ||
    byte === 0x7f;
}

/** The offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    const [count, min] = b < 0x80
      ? [0, 0]
      : b >= 0xc2 && b <= 0xdf
      ? [1, 0x80]
      : b >= 0xe0 && b <= 0xef
      ? [2, 0x800]
      : b >= 0xf0 && b <= 0xf4
      ? [3, 0x10000]
      : [-1, 0];
    if (count < 0 || i + count >= bytes.length + (count === 0 ? 1 : 0)) return i;
    let code = count === 0 ? b : b & (0x3f >> count);
    for (let k = 1; k <= count; k++) {
      if ((bytes[i + k] & 0xc0) !== 0x80) return i;
      code = (code << 6) | (bytes[i + k] & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += count + 1;
  }
  return -1;
}

/** The 1-based line of `offset`. */
function lineOf(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * The text of a data file, refused with a one-line `CliError` when it is binary (a NUL byte, or
 * more than 10 % control characters in the first 64 KiB) or not valid in `encoding`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeData } from "./data_checks.ts";
 * assert.equal(decodeData(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), "f", "latin1"), "café");
 * assert.throws(() => decodeData(new Uint8Array([0x63, 0xe9]), "f", "utf-8"), /offset 1/);
 * assert.throws(() => decodeData(new Uint8Array([0x7f, 0x45, 0, 1]), "f", "utf-8"), /binary/);
 * ```
 */
export function decodeData(bytes: Uint8Array, path: string, encoding: Encoding): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new CliError(
      `${path} looks binary (a NUL byte at offset ${nul}), not text: give a text file`,
    );
  }
  const head = bytes.subarray(0, SCAN);
  let controls = 0, first = -1;
  for (let i = 0; i < head.length; i++) {
    if (isControl(head[i])) {
      controls++;
      if (first < 0) first = i;
    }
  }
  if (controls > 0.1 * head.length) {
    throw new CliError(
      `${path} looks binary: ${Math.round((100 * controls) / head.length)} % of its first ` +
        `${head.length} bytes are control characters (the first at offset ${first}): give a text file`,
    );
  }
  if (encoding === "latin1") return new TextDecoder("latin1").decode(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const offset = invalidUtf8Offset(bytes);
    throw new CliError(
      `${path} is not valid UTF-8: byte 0x${bytes[offset].toString(16).padStart(2, "0")} at ` +
        `offset ${offset} (line ${
          lineOf(bytes, offset)
        }); if it is Latin-1, pass --encoding latin1`,
    );
  }
}

/** A token that is a date, a time, a version or a number rather than an event name. */
const NUMBERISH = /^[v#]?[\d.:\-+/_,TZ]*\d[\d.:\-+/_,TZ]*$|^\d{2,}|\d[.:\-/]\d/;

/**
 * A warning when an events file looks like raw log lines: among many distinct events, a large
 * share are dates, times, versions or numbers (each makes its own event, so nothing repeats to
 * learn from). `null` when it looks like event names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rawLogWarning } from "./data_checks.ts";
 * const lines = Array.from({ length: 40 }, (_, i) => `2024-01-${i} 10:00:${i} install pkg 1.${i}`);
 * assert.match(rawLogWarning(lines, "log")!, /looks like raw log lines/);
 * assert.equal(rawLogWarning(["login read logout"], "ok"), null);
 * ```
 */
export function rawLogWarning(lines: readonly string[], path: string): string | null {
  const distinct = new Set(lines.flatMap((line) => line.split(/\s+/).filter((t) => t !== "")));
  const numeric = [...distinct].filter((token) => NUMBERISH.test(token));
  if (numeric.length < 20 || numeric.length < 0.25 * distinct.size) return null;
  const example = lines.find((line) => line.split(/\s+/).some((t) => NUMBERISH.test(t))) ?? "";
  return `${path} looks like raw log lines: ${numeric.length} of its ${distinct.size} distinct ` +
    `events are dates, times, versions or numbers (e.g. line ${lines.indexOf(example) + 1}: ${
      JSON.stringify(example.slice(0, 100))
    }); keep only the event names of each line ` +
    "(e.g. with cut or awk) so that events repeat";
}
