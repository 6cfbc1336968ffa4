// Reductions of training: bias gradients as column sums over all steps, the squared L2 norm of the
// gradients (for clipGradNorm) and their in-place scaling.

struct Reduce {
  rows: u32,
  columns: u32,
  // Column sums are added at these offsets of `output` (the second one unless it equals the first);
  // sumSquares and scale work on `count` elements from `outputOffset`, and sumSquares writes its
  // sum to `total[extraOutputOffset]` (one parameter's share of the norm).
  outputOffset: u32,
  extraOutputOffset: u32,
  count: u32,
  factor: f32,
}

@group(0) @binding(0) var<uniform> reduce: Reduce;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<storage, read_write> total: array<f32>;

var<workgroup> partial: array<f32, 256>;

// output[outputOffset + n] += Σ_m input[m · columns + n], and the same at extraOutputOffset.
@compute @workgroup_size(64)
fn columnSums(@builtin(global_invocation_id) id: vec3<u32>) {
  let column = id.x;
  if (column >= reduce.columns) {
    return;
  }
  var sum = 0.0;
  for (var row = 0u; row < reduce.rows; row++) {
    sum += input[row * reduce.columns + column];
  }
  output[reduce.outputOffset + column] += sum;
  if (reduce.extraOutputOffset != reduce.outputOffset) {
    output[reduce.extraOutputOffset + column] += sum;
  }
}

// total[extraOutputOffset] = Σ output[outputOffset + i]², by one workgroup: strided partial sums, then a tree.
@compute @workgroup_size(256)
fn sumSquares(@builtin(local_invocation_index) index: u32) {
  var sum = 0.0;
  for (var i = index; i < reduce.count; i += 256u) {
    let g = output[reduce.outputOffset + i];
    sum += g * g;
  }
  partial[index] = sum;
  for (var width = 128u; width > 0u; width /= 2u) {
    workgroupBarrier();
    if (index < width) {
      partial[index] += partial[index + width];
    }
  }
  if (index == 0u) {
    total[reduce.extraOutputOffset] = partial[0];
  }
}

// output[outputOffset + i] *= factor.
@compute @workgroup_size(64)
fn scale(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < reduce.count) {
    output[reduce.outputOffset + id.x] *= reduce.factor;
  }
}
