/**
 * A cell's weights in the WebGPU kernels' layouts (see `layout.ts`), packed once on the CPU and
 * kept there, so that a lost device can be given them again.
 *
 * @module
 */

import type { CellSpec, CellVariant } from "../../contract/mod.ts";
import { packAttentionWeights, packGateBias, packGateWeights, packLaneVector } from "./layout.ts";

/** The weights in the kernels' layouts, with the sizes they were packed for. */
export interface PackedCell {
  /** The variant's equations. */
  readonly variant: CellVariant;
  /** `I`. */
  readonly inputSize: number;
  /** `H`. */
  readonly hiddenSize: number;
  /** `h2h.weight` as texture rows. */
  readonly recurrentWeights: Float32Array<ArrayBuffer>;
  /** `i2h.weight`. */
  readonly inputWeights: Float32Array;
  /** `i2h.bias + h2h.bias`. */
  readonly gateBias: Float32Array;
  /** `i2a.weight`: attention only, else `null`. */
  readonly attentionWeights: Float32Array | null;
  /** `i2a.bias`: attention only, else `null`. */
  readonly attentionBias: Float32Array | null;
}

/**
 * Packs the weights of a spec that passed the contract's checks.
 *
 * @example
 * ```ts
 * import { packCell } from "./packed_cell.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const cell = packCell({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * assert.equal(cell.attentionWeights, null);
 * ```
 */
export function packCell(spec: CellSpec): PackedCell {
  const { variant, inputSize: I, hiddenSize: H, params } = spec;
  const { k } = variant;
  const attention = variant.kind === "attention";
  return {
    variant: { ...variant },
    inputSize: I,
    hiddenSize: H,
    recurrentWeights: packGateWeights(params.h2hWeight, k, H, H),
    inputWeights: packGateWeights(params.i2hWeight, k, H, I),
    gateBias: packGateBias(params.i2hBias, params.h2hBias, k, H),
    attentionWeights: attention ? packAttentionWeights(params.i2aWeight!, k, H, I) : null,
    attentionBias: attention ? packLaneVector(params.i2aBias!, k, H) : null,
  };
}
