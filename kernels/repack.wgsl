// Packs the trainer's flat parameters (kernels/train_*.wgsl, PyTorch layouts one after the other)
// into the inference kernels' layouts (src/backends/webgpu/layout.ts), on the device: after
// optimizer steps there, evaluation runs on the new weights without reading them back. One
// invocation writes one float of the destination, padding included (as zero).

struct Repack {
  // Floats of the destination.
  count: u32,
  // Where the source parameter starts in `params` (gateBias: i2h.bias).
  offset: u32,
  // gateBias: where h2h.bias starts.
  extraOffset: u32,
  hiddenSize: u32,
  // The source's columns: I for i2h.weight and i2a.weight, H for h2h.weight.
  inner: u32,
  // gateWeights: the destination is rows of `rowStride` floats, the first `rowLength` of them
  // packed (the texture rows of h2h.weight, whose copy wants 256-byte aligned rows).
  rowLength: u32,
  rowStride: u32,
}

@group(0) @binding(0) var<uniform> repack: Repack;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>;

const GROUP = 64u;

// The layout a pipeline packs, its `packing` override.
const GATE_WEIGHTS = 0u;
const GATE_BIAS = 1u;
const ATTENTION_WEIGHTS = 2u;
const LANE_VECTOR = 3u;
override packing: u32;

fn unitVecs() -> u32 {
  return (repack.hiddenSize + 3u) / 4u;
}

// Float `p` of an array of 4×4 matrices `[outer][unitVec]` whose column `p % 16 / 4` holds four
// units: its unit, and the index `outer` in front of the unit vector.
fn unitOf(p: u32) -> u32 {
  return p / 16u % unitVecs() * 4u + p % 4u;
}

fn outerOf(p: u32) -> u32 {
  return p / 16u / unitVecs();
}

// layout.ts packGateWeights: [lane][inner][unitVec] 4×4 matrices, column = gate · 4 + unit % 4.
fn gateWeight(o: u32) -> f32 {
  let column = o % repack.rowStride;
  let p = o / repack.rowStride * repack.rowLength + column;
  let unit = unitOf(p);
  let paddedInner = (repack.inner + 3u) / 4u * 4u;
  let i = outerOf(p) % paddedInner;
  let row = (outerOf(p) / paddedInner * 4u + p % 16u / 4u) * repack.hiddenSize + unit;
  if (column >= repack.rowLength || unit >= repack.hiddenSize || i >= repack.inner) {
    return 0.0;
  }
  return params[repack.offset + row * repack.inner + i];
}

// layout.ts packGateBias: i2h.bias + h2h.bias as [lane][unitVec] 4×4 matrices, column = gate.
fn gateBias(o: u32) -> f32 {
  let unit = unitOf(o);
  let row = (outerOf(o) * 4u + o % 16u / 4u) * repack.hiddenSize + unit;
  if (unit >= repack.hiddenSize) {
    return 0.0;
  }
  return params[repack.offset + row] + params[repack.extraOffset + row];
}

// layout.ts packAttentionWeights: [lane][inputVec][unitVec] 4×4 matrices, column = input % 4.
fn attentionWeight(o: u32) -> f32 {
  let unit = unitOf(o);
  let inputVecs = (repack.inner + 3u) / 4u;
  let i = outerOf(o) % inputVecs * 4u + o % 16u / 4u;
  let lane = outerOf(o) / inputVecs;
  if (unit >= repack.hiddenSize || i >= repack.inner) {
    return 0.0;
  }
  return params[repack.offset + (lane * repack.hiddenSize + unit) * repack.inner + i];
}

// layout.ts packLaneVector: i2a.bias (k, H) as [lane][paddedUnits].
fn laneVector(o: u32) -> f32 {
  let paddedUnits = unitVecs() * 4u;
  let unit = o % paddedUnits;
  if (unit >= repack.hiddenSize) {
    return 0.0;
  }
  return params[repack.offset + o / paddedUnits * repack.hiddenSize + unit];
}

// One float of the destination; the dispatch is 2-D (rows of workgroups) when it is large.
@compute @workgroup_size(64)
fn pack(
  @builtin(global_invocation_id) id: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let o = id.y * groups.x * GROUP + id.x;
  if (o >= repack.count) {
    return;
  }
  switch packing {
    case GATE_WEIGHTS: {
      packed[o] = gateWeight(o);
    }
    case GATE_BIAS: {
      packed[o] = gateBias(o);
    }
    case ATTENTION_WEIGHTS: {
      packed[o] = attentionWeight(o);
    }
    case LANE_VECTOR, default: {
      packed[o] = laneVector(o);
    }
  }
}
