/**
 * A float64 LRP oracle, written as directly as the original numpy code: one sequence at a time,
 * every rule an explicit `lrpLinear` with its weight matrix (identity matrices for the cell split
 * and the lane sum), on the activations of the float64 reference forward. The batched
 * implementation in src/explain is tested against it.
 *
 * @module
 */

import type { CellSpec } from "../src/contract/mod.ts";
import { gate as activate } from "../src/reference/cell.ts";
import { newTrace, runSequence } from "../src/reference/sequence.ts";

/** Arras et al.'s `lrp_linear`: `w` is `(D, M)`, inputs `hin (D)`, outputs `hout (M)`. */
export function lrpLinear(
  hin: number[],
  w: number[][],
  b: number[],
  hout: number[],
  rout: number[],
  bias_nb_units: number,
  eps: number,
  bias_factor: number,
): number[] {
  return hin.map((value, i) =>
    hout.reduce((sum, out, m) => {
      const sign = out >= 0 ? 1 : -1;
      const numer = w[i][m] * value + bias_factor * (b[m] + eps * sign) / bias_nb_units;
      return sum + numer / (out + eps * sign) * rout[m];
    }, 0)
  );
}

/** One direction of a level: its spec, and whether it reads the steps backwards. */
export interface OracleDirection {
  spec: CellSpec;
  reversed: boolean;
}

const identity = (n: number, m: number, map: (i: number) => number) =>
  Array.from({ length: n }, (_, i) => Array.from({ length: m }, (_, j) => (map(i) === j ? 1 : 0)));

/** The oracle's relevance for one sequence `x` `(T, I)` (rows of numbers). */
export function oracleLrp(
  levels: OracleDirection[][],
  dense: { weight: number[][]; bias: number[] },
  x: number[][],
  target: number,
  eps: number,
  biasFactor: number,
): { relevance: number[][]; rest: number; score: number } {
  const T = x.length;
  // Forward, float64.
  const traces: { trace: ReturnType<typeof newTrace>; input: number[][] }[][] = [];
  let input = x;
  for (const level of levels) {
    const traced = level.map(({ spec, reversed }) => {
      const seen = reversed ? [...input].reverse() : input;
      const trace = newTrace();
      const H = spec.hiddenSize, k = spec.variant.k;
      runSequence(
        spec,
        {
          batch: 1,
          seqLen: T,
          x: Float32Array.from(seen.flat()),
          hidden: new Float32Array(H),
          state: new Float32Array(k * H),
        },
        Float64Array,
        trace,
      );
      return { trace, input: seen };
    });
    traces.push(traced);
    input = Array.from({ length: T }, (_, t) =>
      traced.flatMap(({ trace }, d) => {
        const step = level[d].reversed ? T - 1 - t : t;
        return Array.from(trace.hiddens[step + 1]);
      }));
  }
  const top = traces[traces.length - 1];
  const final = top.flatMap(({ trace }) => Array.from(trace.hiddens[T]));
  const scores = dense.weight.map((row, c) =>
    row.reduce((sum, w, i) => sum + w * final[i], dense.bias[c])
  );
  const rout = scores.map((s, c) => (c === target ? s : 0));
  const wT = final.map((_, i) => dense.weight.map((row) => row[i]));
  const finalRelevance = lrpLinear(
    final,
    wT,
    dense.bias,
    scores,
    rout,
    final.length,
    eps,
    biasFactor,
  );

  let rest = 0;
  let arriving: number[][] | null = null;
  for (let l = levels.length - 1; l >= 0; l--) {
    const I = levels[l][0].spec.inputSize;
    const relevance = Array.from({ length: T }, () => new Array(I).fill(0));
    let from = 0;
    levels[l].forEach(({ spec, reversed }, d) => {
      const { trace, input: seen } = traces[l][d];
      const H = spec.hiddenSize, k = spec.variant.k, kind = spec.variant.kind, kH = k * H;
      const activation = spec.variant.recurrentActivation ?? "sigmoid";
      const outputRelevance = Array.from({ length: T }, (_, t) => {
        if (arriving === null) {
          return t === T - 1 ? finalRelevance.slice(from, from + H) : new Array(H).fill(0);
        }
        return arriving[reversed ? T - 1 - t : t].slice(from, from + H);
      });
      from += H;
      const p = spec.params;
      const gRow = (lane: number, u: number) => lane * 4 * H + 3 * H + u;
      const bias = Array.from({ length: kH }, (_, j) => {
        const r = gRow(Math.floor(j / H), j % H);
        return p.i2hBias[r] + p.h2hBias[r];
      });
      const wx = Array.from(
        { length: I },
        (_, i) =>
          Array.from({ length: kH }, (_, j) => p.i2hWeight[gRow(Math.floor(j / H), j % H) * I + i]),
      );
      const wh = Array.from(
        { length: H },
        (_, v) =>
          Array.from({ length: kH }, (_, j) => p.h2hWeight[gRow(Math.floor(j / H), j % H) * H + v]),
      );
      let rh = new Array(H).fill(0);
      let rc = new Array(kH).fill(0);
      for (let t = T - 1; t >= 0; t--) {
        rh = rh.map((r, u) => r + outputRelevance[t][u]);
        const z = trace.z[t], s = trace.weights[t];
        const gate = (lane: number, q: number, u: number) => z[lane * 4 * H + q * H + u];
        const scale = (j: number) => (s === undefined ? 1 : s[j]);
        const c = Array.from(trace.states[t + 1]), prev = Array.from(trace.states[t]);
        const o = Array.from(trace.outputGates[t]);
        // Readout: h = Σ_lanes s·o·tanh(c).
        if (k === 1) {
          rc = rc.map((r, j) => r + rh[j]);
        } else if (kind === "stochastic") {
          rc = rc.map((r, j) => {
            const lane = Math.floor(j / H), u = j % H;
            let best = 0;
            for (let m = 1; m < k; m++) if (o[m * H + u] > o[best * H + u]) best = m;
            return r + (best === lane ? rh[u] : 0);
          });
        } else {
          const y = c.map((cell, j) => o[j] * Math.tanh(cell));
          const h = Array.from(trace.hiddens[t + 1]);
          const share = lrpLinear(
            y,
            identity(kH, H, (j) => j % H),
            new Array(H).fill(0),
            h,
            rh,
            kH,
            eps,
            biasFactor,
          );
          rc = rc.map((r, j) => r + share[j]);
        }
        const keep = Array.from({ length: kH }, (_, j) => {
          const f = scale(j) * activate(activation, gate(Math.floor(j / H), 0, j % H));
          return kind === "attention" ? 1 - f : f;
        });
        const written = Array.from(
          { length: kH },
          (_, j) =>
            scale(j) * activate(activation, gate(Math.floor(j / H), 1, j % H)) *
            Math.tanh(gate(Math.floor(j / H), 3, j % H)),
        );
        const eye = identity(kH, kH, (j) => j);
        const zeros = new Array(kH).fill(0);
        const rg = lrpLinear(written, eye, zeros, c, rc, 2 * kH, eps, biasFactor);
        rc = lrpLinear(keep.map((f, j) => f * prev[j]), eye, zeros, c, rc, 2 * kH, eps, biasFactor);
        const pre = Array.from({ length: kH }, (_, j) => gate(Math.floor(j / H), 3, j % H));
        const rx = lrpLinear(seen[t], wx, bias, pre, rg, I + H, eps, biasFactor);
        const step = reversed ? T - 1 - t : t;
        rx.forEach((r, i) => (relevance[step][i] += r));
        rh = lrpLinear(Array.from(trace.hiddens[t]), wh, bias, pre, rg, I + H, eps, biasFactor);
      }
      rest += rh.reduce((a, b) => a + b, 0) + rc.reduce((a, b) => a + b, 0);
    });
    arriving = relevance;
  }
  return { relevance: arriving!, rest, score: scores[target] };
}
