// The per-lane cell equations of the LSTM family that differ between variants, written once for
// the inference step (recurrent_step.wgsl) and the training step (train_cell.wgsl);
// kernels/generate.ts puts this file in front of each kernel.
//
// Each function takes the variant code `kind` (a kernel passes its `variant` override, so every
// branch folds away when the pipeline is made) and switches on it, one case per cell equations of
// the LSTM family. WGSL's `switch` needs a `default`: kernels/generate.ts refuses (`deno task
// build:kernels`) a switch here with no case for one of the family's equations in
// src/variants.ts, so a new variant is never run as another by the default. Every function works
// on four units as a vec4 and keeps no arrays: inlined per row, its values stay named registers
// (see recurrent_step.wgsl). The training step, one unit per row, passes its value in every
// component and reads `.x`.

// What a unit's readout carries from lane to lane: the hidden state so far and, for a readout
// that chooses a lane, the chosen lane's output gate.
struct Fold {
  hidden: vec4<f32>,
  bestOutputGate: vec4<f32>,
}

// The factor that keeps the previous cells, `c = keep·c_prev + i·g`, of the forget gate `forget`
// (already scaled by the lane weight with attention): `f`, or attention's inverted `1 − f`.
fn keepFactor(kind: u32, forget: vec4<f32>) -> vec4<f32> {
  switch kind {
    case VARIANT_ARRAY, VARIANT_STOCHASTIC: {
      return forget;
    }
    case VARIANT_ATTENTION: {
      return 1.0 - forget;
    }
    default: {
      return forget;
    }
  }
}

// d keepFactor / d forget.
fn keepSlope(kind: u32) -> f32 {
  switch kind {
    case VARIANT_ARRAY, VARIANT_STOCHASTIC: {
      return 1.0;
    }
    case VARIANT_ATTENTION: {
      return -1.0;
    }
    default: {
      return 1.0;
    }
  }
}

// Whether lane `lane` becomes the unit's chosen lane, for a readout that chooses one (stochastic:
// the largest output gate; strictly greater, so on an exact tie the first lane keeps the unit, as
// torch's argmax does). False for the readouts that sum.
fn choosesLane(kind: u32, lane: u32, fold: Fold, outputGate: vec4<f32>) -> vec4<bool> {
  switch kind {
    case VARIANT_ARRAY, VARIANT_ATTENTION: {
      return vec4<bool>(false);
    }
    case VARIANT_STOCHASTIC: {
      return (outputGate > fold.bestOutputGate) | vec4<bool>(lane == 0u);
    }
    default: {
      return vec4<bool>(false);
    }
  }
}

// Folds lane output `o·tanh(c)` into the readout: the sum over the lanes (array, attention, LSTM),
// or the chosen lane's output (stochastic; `chosen` from choosesLane).
fn foldLane(
  kind: u32,
  fold: Fold,
  outputGate: vec4<f32>,
  laneOutput: vec4<f32>,
  chosen: vec4<bool>,
) -> Fold {
  switch kind {
    case VARIANT_ARRAY, VARIANT_ATTENTION: {
      return Fold(fold.hidden + laneOutput, fold.bestOutputGate);
    }
    case VARIANT_STOCHASTIC: {
      return Fold(
        select(fold.hidden, laneOutput, chosen),
        select(fold.bestOutputGate, outputGate, chosen),
      );
    }
    default: {
      return fold;
    }
  }
}

// Backward of foldLane: whether lane `lane` receives dLoss/d h (every lane of a sum; the chosen
// lane `chosen` of a readout that chooses one).
fn readsLane(kind: u32, lane: u32, chosen: u32) -> bool {
  switch kind {
    case VARIANT_ARRAY, VARIANT_ATTENTION: {
      return true;
    }
    case VARIANT_STOCHASTIC: {
      return lane == chosen;
    }
    default: {
      return true;
    }
  }
}
