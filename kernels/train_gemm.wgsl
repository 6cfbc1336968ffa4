// The training GEMM: `C = A · B (+ C) (+ bias)` on strided views of three buffers, for the input
// projections of all steps, the weight gradients over all steps and the input gradients.
//
// Strides make transposes free: A[m][i] = a[aOffset + m·aRowStride + i·aInnerStride], B[i][n] =
// b[bOffset + i·bInnerStride + n·bColumnStride], C[m][n] = c[cOffset + m·cRowStride + n]. A
// workgroup of 16 × 16 invocations computes a 64 × 64 tile of C through 16-deep slices of A and B
// in workgroup memory; an invocation owns rows y + 16·r and columns x + 16·s (r, s < 4), its 16
// sums being the named columns of one mat4x4 (see recurrent_step.wgsl for why they are named).

const NO_BIAS = 0xffffffffu;

struct Gemm {
  m: u32,
  n: u32,
  inner: u32,
  aOffset: u32,
  aRowStride: u32,
  aInnerStride: u32,
  bOffset: u32,
  bInnerStride: u32,
  bColumnStride: u32,
  cOffset: u32,
  cRowStride: u32,
  // 1: add to C; 0: overwrite it.
  accumulate: u32,
  // Offsets into `b` of up to two vectors added to every row of C, or NO_BIAS.
  bias: u32,
  extraBias: u32,
}

@group(0) @binding(0) var<uniform> gemm: Gemm;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// [i][y]: A at rows y + 16·r of the tile; [i][x]: B at columns x + 16·s.
var<workgroup> aTile: array<vec4<f32>, 256>;
var<workgroup> bTile: array<vec4<f32>, 256>;

fn loadA(row: u32, i: u32) -> f32 {
  if (row < gemm.m && i < gemm.inner) {
    return a[gemm.aOffset + row * gemm.aRowStride + i * gemm.aInnerStride];
  }
  return 0.0;
}

fn loadB(i: u32, column: u32) -> f32 {
  if (i < gemm.inner && column < gemm.n) {
    return b[gemm.bOffset + i * gemm.bInnerStride + column * gemm.bColumnStride];
  }
  return 0.0;
}

fn store(row: u32, column: u32, value: f32) {
  if (row >= gemm.m || column >= gemm.n) {
    return;
  }
  var sum = value;
  if (gemm.bias != NO_BIAS) {
    sum += b[gemm.bias + column];
  }
  if (gemm.extraBias != NO_BIAS) {
    sum += b[gemm.extraBias + column];
  }
  let at = gemm.cOffset + row * gemm.cRowStride + column;
  if (gemm.accumulate == 1u) {
    sum += c[at];
  }
  c[at] = sum;
}

@compute @workgroup_size(16, 16)
fn multiply(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let x = local.x;
  let y = local.y;
  let row = group.y * 64u + y;
  let column = group.x * 64u + x;
  // Columns of `acc` are the four columns s; its rows the four rows r.
  var acc = mat4x4<f32>();
  for (var first = 0u; first < gemm.inner; first += 16u) {
    // Invocation (x, y) loads A's rows y + 16·r at depth x, and B's columns x + 16·s at depth y.
    let aRow = group.y * 64u + y;
    aTile[x * 16u + y] = vec4<f32>(
      loadA(aRow, first + x),
      loadA(aRow + 16u, first + x),
      loadA(aRow + 32u, first + x),
      loadA(aRow + 48u, first + x),
    );
    let bColumn = group.x * 64u + x;
    bTile[y * 16u + x] = vec4<f32>(
      loadB(first + y, bColumn),
      loadB(first + y, bColumn + 16u),
      loadB(first + y, bColumn + 32u),
      loadB(first + y, bColumn + 48u),
    );
    workgroupBarrier();
    for (var i = 0u; i < 16u; i++) {
      let av = aTile[i * 16u + y];
      let bv = bTile[i * 16u + x];
      acc[0] += av * bv.x;
      acc[1] += av * bv.y;
      acc[2] += av * bv.z;
      acc[3] += av * bv.w;
    }
    workgroupBarrier();
  }
  for (var s = 0u; s < 4u; s++) {
    let col = acc[s];
    store(row, column + 16u * s, col.x);
    store(row + 16u, column + 16u * s, col.y);
    store(row + 32u, column + 16u * s, col.z);
    store(row + 48u, column + 16u * s, col.w);
  }
}
