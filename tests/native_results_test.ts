/**
 * The native library's forwards write their results into arrays the caller passes
 * (`native/src/ffi.rs`, `Results`): an array of the wrong length is refused with a message
 * before anything runs, never written past.
 */

import assert from "node:assert/strict";
import { lastError, lstmArguments } from "../src/backends/native/kernel.ts";
import { openNativeLibrary } from "../src/backends/native/library.ts";
import { isAvailable } from "./_backends.ts";
import { fixedCell } from "./_fixed_cells.ts";

const ignore = !isAvailable("native");

Deno.test({
  name: "native: a forward refuses result arrays of the wrong length and fills the right ones",
  ignore,
  async fn() {
    const library = await openNativeLibrary();
    const { symbols } = library;
    const [I, H, B, T] = [3, 4, 2, 5];
    const z = (n: number) => new Float32Array(n).fill(0.5);
    const spec = fixedCell("lstm", 1, I, H);
    const cell = (symbols.alstm_cell_new as (...args: unknown[]) => Deno.PointerValue)(
      2,
      ...lstmArguments(spec),
    );
    assert.notEqual(cell, null);
    try {
      const run = (outputLength: number, parts: number, byUnits: number) => {
        const output = z(outputLength);
        const [hidden, state] = [z(B * H), z(B * H)];
        const status = symbols.alstm_cell_forward(
          cell,
          parts,
          byUnits,
          B,
          T,
          z(B * T * I),
          z(B * H),
          z(B * H),
          output,
          output.length,
          hidden,
          hidden.length,
          state,
          state.length,
          null,
          0,
          null,
          0,
        );
        return { status, output };
      };
      const short = run(B * T * H - 1, 2, 0);
      assert.equal(short.status, 1);
      assert.match(lastError(library), /output array holds 39 values, the forward writes 40/);
      assert.ok(short.output.every((v) => v === 0.5), "nothing written");
      for (const [parts, byUnits] of [[1, 0], [2, 0], [2, 1]]) {
        const { status, output } = run(B * T * H, parts, byUnits);
        assert.equal(status, 0);
        assert.ok(output.every((v) => v !== 0.5 && Number.isFinite(v)), "every value written");
      }
    } finally {
      symbols.alstm_cell_free(cell);
    }
  },
});
