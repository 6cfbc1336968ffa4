/**
 * Reads the zip archives torch (`.pt`) and Keras (`.keras`) write, one named entry at a time: the
 * central directory is read without inflating anything, and an entry is inflated only when asked
 * for, into a buffer no larger than the caller's bound. A hostile archive's unreferenced entries
 * (a deflate bomb shared by many names) therefore cost nothing, and a referenced one costs at
 * most its bound. Every offset read is checked against the file, so no loop walks past its end.
 *
 * @module
 */

import { inflateSync } from "npm:fflate@0.8.2";

/**
 * A malformed zip archive or an entry over its bound; loaders wrap it in their own error class.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ZipArchive, ZipError } from "./zip.ts";
 * assert.throws(() => ZipArchive.open(new Uint8Array(30)), ZipError);
 * ```
 */
export class ZipError extends Error {
  /**
   * Makes the error; `message` says what is wrong with the archive.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ZipError } from "./zip.ts";
   * assert.equal(new ZipError("no end record").name, "ZipError");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "ZipError";
  }
}

/** One entry of the central directory. */
export interface ZipEntry {
  /** The entry's path in the archive. */
  readonly name: string;
  /** 0 (stored) or 8 (deflated). */
  readonly method: number;
  /** The bytes it takes in the file. */
  readonly compressedSize: number;
  /** The bytes it declares it holds once inflated (checked, never trusted). */
  readonly size: number;
  /** Where its local header starts. */
  readonly headerOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;
const CENTRAL_HEADER_BYTES = 46;

/**
 * A zip archive's directory, and its entries read on demand.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { strToU8, zipSync } from "npm:fflate@0.8.2";
 * import { ZipArchive } from "./zip.ts";
 * const archive = ZipArchive.open(zipSync({ "a.txt": strToU8("hello") }));
 * assert.deepEqual(archive.names(), ["a.txt"]);
 * assert.equal(new TextDecoder().decode(archive.read("a.txt", 100)), "hello");
 * ```
 */
export class ZipArchive {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #entries: Map<string, ZipEntry>;

  private constructor(bytes: Uint8Array, entries: Map<string, ZipEntry>) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#entries = entries;
  }

  /**
   * Reads the central directory of `bytes`; inflates nothing.
   *
   * @throws {ZipError} If there is no end record or a directory entry lies outside the file.
   */
  static open(bytes: Uint8Array): ZipArchive {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const u16 = (at: number) => within(bytes, at, 2, "a 16-bit field") && view.getUint16(at, true);
    const u32 = (at: number) => within(bytes, at, 4, "a 32-bit field") && view.getUint32(at, true);
    const u64 = (at: number) => {
      within(bytes, at, 8, "a 64-bit field");
      const value = view.getBigUint64(at, true);
      if (value > BigInt(bytes.length)) {
        throw new ZipError(`a zip64 field at byte ${at} says ${value}, beyond the file`);
      }
      return Number(value);
    };
    // The end record is in the last 22 + 65535 (its comment) bytes.
    let end = bytes.length - 22;
    const stop = Math.max(0, bytes.length - 22 - 0xffff);
    while (end >= stop && view.getUint32(end, true) !== EOCD) end--;
    if (end < stop) throw new ZipError("no end-of-central-directory record: not a whole zip file");
    let count = u16(end + 10);
    let offset = u32(end + 16);
    if (offset === MAX32 || count === 0xffff) {
      const locator = end - 20;
      if (locator >= 0 && u32(locator) === ZIP64_LOCATOR) {
        const record = u64(locator + 8);
        if (u32(record) !== ZIP64_EOCD) throw new ZipError("the zip64 end record is missing");
        count = u64(record + 32);
        offset = u64(record + 48);
      }
    }
    if (count * CENTRAL_HEADER_BYTES > bytes.length) {
      throw new ZipError(`the directory claims ${count} entries, more than the file can hold`);
    }
    const entries = new Map<string, ZipEntry>();
    let at = offset;
    for (let i = 0; i < count; i++) {
      if (u32(at) !== CENTRAL) throw new ZipError(`directory entry ${i} at byte ${at} is corrupt`);
      const nameLength = u16(at + 28);
      const extraLength = u16(at + 30);
      const nameStart = at + CENTRAL_HEADER_BYTES;
      within(bytes, nameStart, nameLength + extraLength, `the name of directory entry ${i}`);
      const name = new TextDecoder().decode(bytes.subarray(nameStart, nameStart + nameLength));
      let compressedSize = u32(at + 20);
      let size = u32(at + 24);
      let headerOffset = u32(at + 42);
      if (size === MAX32 || compressedSize === MAX32 || headerOffset === MAX32) {
        // The zip64 extra field holds, in this order, the fields whose 32-bit value is MAX32.
        let extra = nameStart + nameLength;
        const extraEnd = extra + extraLength;
        while (extra + 4 <= extraEnd && u16(extra) !== 1) extra += 4 + u16(extra + 2);
        if (extra + 4 > extraEnd) throw new ZipError(`entry ${name} lacks its zip64 sizes`);
        let field = extra + 4;
        const next = () => (field += 8, u64(field - 8));
        if (size === MAX32) size = next();
        if (compressedSize === MAX32) compressedSize = next();
        if (headerOffset === MAX32) headerOffset = next();
      }
      entries.set(name, { name, method: u16(at + 10), compressedSize, size, headerOffset });
      at = nameStart + nameLength + extraLength + u16(at + 32);
    }
    return new ZipArchive(bytes, entries);
  }

  /** The entries' names, in directory order. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The directory entry named `name`, if any. */
  entry(name: string): ZipEntry | undefined {
    return this.#entries.get(name);
  }

  /**
   * The contents of entry `name`, at most `limit` bytes: a stored entry is a view of the file, a
   * deflated one is inflated into a buffer of its declared size, which must not exceed `limit`
   * and which the inflater cannot write past; a stream that does not fill it exactly is corrupt.
   *
   * @throws {ZipError} If the entry is missing, exceeds `limit`, lies outside the file, is
   * compressed with another method, or inflates to another size than it declares.
   */
  read(name: string, limit: number): Uint8Array {
    const entry = this.#entries.get(name);
    if (entry === undefined) throw new ZipError(`entry ${name} is missing from the zip`);
    const { method, compressedSize, size, headerOffset } = entry;
    if (size > limit) {
      throw new ZipError(
        `entry ${name} declares ${size} bytes, more than the ${limit} it may hold here`,
      );
    }
    within(this.#bytes, headerOffset, 30, `the local header of ${name}`);
    if (this.#view.getUint32(headerOffset, true) !== LOCAL) {
      throw new ZipError(`the local header of ${name} at byte ${headerOffset} is corrupt`);
    }
    const start = headerOffset + 30 + this.#view.getUint16(headerOffset + 26, true) +
      this.#view.getUint16(headerOffset + 28, true);
    within(this.#bytes, start, compressedSize, `the data of ${name}`);
    const data = this.#bytes.subarray(start, start + compressedSize);
    if (method === 0) {
      if (compressedSize !== size) {
        throw new ZipError(
          `stored entry ${name} declares ${size} bytes but takes ${compressedSize}`,
        );
      }
      return data;
    }
    if (method !== 8) throw new ZipError(`entry ${name} uses compression method ${method}`);
    let inflated: Uint8Array;
    try {
      // One byte more than declared: the inflater cannot write past its buffer, and a stream
      // that fills the extra byte is longer than its header says.
      inflated = inflateSync(data, { out: new Uint8Array(size + 1) });
    } catch (error) {
      throw new ZipError(`entry ${name} does not inflate: ${(error as Error).message}`);
    }
    if (inflated.length > size) {
      throw new ZipError(`entry ${name} inflates to more than the ${size} bytes it declares`);
    }
    if (inflated.length < size) {
      throw new ZipError(`entry ${name} inflates to ${inflated.length} bytes, not ${size}`);
    }
    return inflated;
  }
}

function within(bytes: Uint8Array, at: number, length: number, what: string): true {
  if (at < 0 || length < 0 || at + length > bytes.length) {
    throw new ZipError(
      `${what} at byte ${at} (${length} bytes) lies outside the ${bytes.length}-byte file`,
    );
  }
  return true;
}

/**
 * The most bytes a compressed entry that the caller cannot size in advance (a pickle, a config, a
 * weights file) may inflate to from a `fileLength`-byte archive: 64 times the file, at least
 * 16 MiB. Real pickles, configs and weights compress less than 10 to 1 (weights barely at all);
 * deflate reaches about 1000 to 1, so without a bound a 64 KB entry could ask for 64 MB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inflateBound } from "./zip.ts";
 * assert.equal(inflateBound(1024), 2 ** 24);
 * assert.equal(inflateBound(2 ** 30), 2 ** 36);
 * ```
 */
export function inflateBound(fileLength: number): number {
  return Math.max(2 ** 24, 64 * fileLength);
}
