/**
 * A random weight list for `kerasLrpNetwork`, in the TF2 order of the original code.
 *
 * @module
 */

import { randn, type Tensor } from "../mod.ts";

/**
 * The eight entries for `I` inputs, `H` units and `C` classes: each direction's `W_x (I, 4H)`,
 * `W_h (H, 4H)`, `b (4H)` (forward, then backward), then the dense `(2H, C)` and `(C)`; entry `n`
 * drawn with seed `n + 1`.
 */
export function kerasWeightList(I: number, H: number, C: number): Tensor[] {
  const direction = [[I, 4 * H], [H, 4 * H], [4 * H]];
  const shapes = [...direction, ...direction, [2 * H, C], [C]];
  return shapes.map((shape, n) => randn(shape, { seed: n + 1 }));
}
