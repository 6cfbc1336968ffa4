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

/** An SVG plot of `curves` against the step, with axes, ticks and a legend. */
export function lossPlot(curves: Curve[], title: string): string {
  const [width, height, left, right, top, bottom] = [640, 400, 60, 20, 30, 40];
  const all = curves.flatMap((curve) => curve.points).filter(([, y]) => Number.isFinite(y));
  const xMax = Math.max(1, ...all.map(([x]) => x));
  const yMin = Math.min(...all.map(([, y]) => y), Infinity);
  const yMax = Math.max(...all.map(([, y]) => y), -Infinity);
  const [y0, y1] = all.length === 0 ? [0, 1] : yMin === yMax ? [yMin - 1, yMax + 1] : [yMin, yMax];
  const px = (x: number) => left + (x / xMax) * (width - left - right);
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
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    const x = Math.round((xMax * i) / 4);
    parts.push(
      `<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(3)}</text>`,
      `<line x1="${left}" y1="${py(y)}" x2="${width - right}" y2="${py(y)}" stroke="#ddd"/>`,
      `<text x="${px(x)}" y="${height - bottom + 16}" text-anchor="middle">${x}</text>`,
    );
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
