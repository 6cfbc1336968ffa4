/**
 * Loss curves as a self-contained SVG: no scripts, fonts or links, viewable in any browser.
 *
 * @module
 */

import { escape } from "../explain/render.ts";

/** A named curve of `[x, y]` points. */
export interface Curve {
  /** The legend's label. */
  label: string;
  /** Its colour (any SVG colour). */
  color: string;
  /** The points, `[step, loss]`. */
  points: [number, number][];
}

/**
 * Round tick values covering `[min, max]`: steps of 1, 2, 2.5 or 5 times a power of ten, about
 * `count` of them, and their labels with just the decimals the step needs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { niceTicks } from "./plot.ts";
 * assert.deepEqual(niceTicks(1.498, 2.228).labels, ["1.4", "1.6", "1.8", "2.0", "2.2", "2.4"]);
 * ```
 */
export function niceTicks(
  min: number,
  max: number,
  count = 5,
): { values: number[]; labels: string[] } {
  const span = max > min ? max - min : Math.abs(max) || 1;
  const rough = span / Math.max(1, count - 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const first = Math.floor(min / step + 1e-9), last = Math.ceil(max / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) +
    (Math.round(step / power) === 2.5 || step / power === 2.5 ? 1 : 0);
  const values: number[] = [];
  for (let i = first; i <= Math.max(last, first + 1); i++) values.push(i * step);
  return { values, labels: values.map((v) => v.toFixed(Math.min(decimals, 20))) };
}

/** An SVG plot of `curves` against the step, with axes, ticks and a legend. */
export function lossPlot(curves: Curve[], title: string): string {
  const [width, height, left, right, top, bottom] = [640, 400, 60, 20, 30, 40];
  const all = curves.flatMap((curve) => curve.points).filter(([, y]) => Number.isFinite(y));
  const xMax = Math.max(1, ...all.map(([x]) => x));
  const yMin = Math.min(...all.map(([, y]) => y), Infinity);
  const yMax = Math.max(...all.map(([, y]) => y), -Infinity);
  const yTicks = all.length === 0 ? niceTicks(0, 1) : niceTicks(yMin, yMax);
  // Steps are whole: at most one tick a step.
  const xValues = niceTicks(0, xMax, Math.min(5, xMax + 1)).values;
  const [y0, y1] = [yTicks.values[0], yTicks.values.at(-1)!];
  const xEnd = xValues.at(-1)!;
  const px = (x: number) => left + (x / xEnd) * (width - left - right);
  const py = (y: number) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" ` +
    `stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="black"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 6}" text-anchor="middle">step</text>`,
    `<text x="14" y="${(top + height - bottom) / 2}" text-anchor="middle" ` +
    `transform="rotate(-90 14 ${(top + height - bottom) / 2})">loss</text>`,
  ];
  yTicks.values.forEach((y, i) => {
    parts.push(
      `<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${yTicks.labels[i]}</text>`,
      `<line x1="${left}" y1="${py(y)}" x2="${width - right}" y2="${py(y)}" stroke="#ddd"/>`,
    );
  });
  for (const x of xValues) {
    parts.push(`<text x="${px(x)}" y="${height - bottom + 16}" text-anchor="middle">${x}</text>`);
  }
  curves.forEach((curve, i) => {
    const points = curve.points.filter(([, y]) => Number.isFinite(y));
    const path = points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline points="${path}" fill="none" stroke="${curve.color}" stroke-width="1.5"/>`,
    );
    if (points.length === 1) {
      parts.push(
        `<circle cx="${px(points[0][0])}" cy="${py(points[0][1])}" r="3" ` +
          `fill="${curve.color}"/>`,
      );
    }
    const ly = top + 14 + i * 16;
    parts.push(
      `<line x1="${width - right - 130}" y1="${ly - 4}" x2="${width - right - 110}" ` +
        `y2="${ly - 4}" stroke="${curve.color}" stroke-width="2"/>`,
      `<text x="${width - right - 104}" y="${ly}">${escape(curve.label)}</text>`,
    );
  });
  parts.push("</svg>\n");
  return parts.join("\n");
}
