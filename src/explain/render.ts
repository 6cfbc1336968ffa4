/**
 * `renderRelevance`: a relevance heatmap as one self-contained HTML page with inline SVG, readable
 * in any browser without scripts.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { sequenceOf, sumFeatures } from "./tokens.ts";

/** Options of {@linkcode renderRelevance}. */
export interface RenderOptions {
  /** Which sequence of a `(B, T, I)` relevance to draw (default 0). */
  sequence?: number;
  /** A label per time step (tokens, event names); default the step numbers. */
  tokens?: readonly string[];
  /** A label per input feature; default `x0, x1, …`. */
  features?: readonly string[];
  /** The page's heading (default "Relevance"). */
  title?: string;
}

/** Escapes text for HTML and SVG content and attributes (also the CLI's plots). */
export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Red for positive, blue for negative relevance, white for none; `scale` is the largest `|r|`. */
function colour(value: number, scale: number): string {
  const strength = scale > 0 && Number.isFinite(value) ? Math.min(1, Math.abs(value) / scale) : 0;
  const fade = Math.round(255 * (1 - strength));
  return value >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
}

/** A white-space label made visible (a space token would otherwise be blank). */
function visible(label: string): string {
  if (label.trim() !== "") return label;
  return label.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥");
}

function checkLabels(name: string, labels: readonly string[] | undefined, count: number): string[] {
  if (labels === undefined) return [];
  if (!Array.isArray(labels) || labels.length !== count) {
    throw new RangeError(`${name} must be ${count} labels, got ${describe(labels)}`);
  }
  return labels.map(String);
}

/**
 * Draws relevance over time steps and features: a strip of the steps (tokens) coloured by their
 * total relevance, and a grid of features × steps; red is positive, blue negative, the colour's
 * strength relative to the largest magnitude. Every cell has a tooltip (`<title>`) with its value.
 * Labels are escaped; the page has no scripts and no external resources.
 *
 * @param relevance `(T, I)` or `(B, T, I)` (for example `lrp(...).relevance`).
 * @param options Which sequence, labels for steps and features, a title.
 * @returns An HTML document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderRelevance, tensor } from "../../mod.ts";
 * const html = renderRelevance(tensor([0.5, -0.2, 0, 1], [2, 2]), { tokens: ["<a>", "b"] });
 * assert.ok(html.includes("&#60;a&#62;") && !html.includes("<script"));
 * ```
 */
export function renderRelevance(relevance: Tensor, options: RenderOptions = {}): string {
  const sequence = options.sequence ?? 0;
  const { values, T, I } = sequenceOf(relevance, sequence, "options.sequence");
  const tokens = checkLabels("options.tokens", options.tokens, T);
  const features = checkLabels("options.features", options.features, I);
  const stepLabel = (t: number) => tokens[t] ?? String(t);
  const featureLabel = (i: number) => features[i] ?? `x${i}`;
  const totals = Array.from(sumFeatures(values, T, I));
  const cellScale = values.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
  const stepScale = totals.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);

  // Column labels are the tokens when given; longer than a cell, they are drawn slanted.
  const longest = Math.max(...Array.from({ length: T }, (_, t) => visible(stepLabel(t)).length));
  const slanted = longest > 2;
  const cell = 22,
    left = 12 + 7 * Math.max(...Array.from({ length: I }, (_, i) => featureLabel(i).length), 4),
    top = slanted ? 12 + 5 * Math.min(longest, 16) : 16;
  const width = left + T * cell + 8, height = top + I * cell + 8;
  const rects: string[] = [];
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < I; i++) {
      const v = values[t * I + i];
      rects.push(
        `<rect x="${left + t * cell}" y="${top + i * cell}" width="${cell - 1}" height="${
          cell - 1
        }" fill="${colour(v, cellScale)}"><title>${escape(stepLabel(t))} · ${
          escape(featureLabel(i))
        }: ${v.toPrecision(4)}</title></rect>`,
      );
    }
  }
  const rowLabels = Array.from(
    { length: I },
    (_, i) =>
      `<text x="${left - 4}" y="${top + i * cell + cell * 0.7}" text-anchor="end">${
        escape(featureLabel(i))
      }</text>`,
  );
  const columnLabels = Array.from({ length: T }, (_, t) => {
    const [x, y] = [left + t * cell + cell / 2, top - 4];
    const label = escape(visible(stepLabel(t)).slice(0, 16));
    return slanted
      ? `<text x="${x}" y="${y}" transform="rotate(-60 ${x} ${y})">${label}</text>`
      : `<text x="${x}" y="${y}" text-anchor="middle">${label}</text>`;
  });
  const strip = totals.map((v, t) =>
    `<span class="token" style="background:${colour(v, stepScale)}" title="step ${t}: ${
      v.toPrecision(4)
    }">${escape(visible(stepLabel(t)))}</span>`
  ).join(" ");
  const title = escape(options.title ?? "Relevance");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
.token { display: inline-block; padding: 2px 5px; margin: 2px 0; border: 1px solid #ccc; border-radius: 3px; }
svg text { font: 11px system-ui, sans-serif; }
</style></head>
<body>
<h1>${title}</h1>
<p>Sequence ${sequence}: red is relevance for the explained class, blue against it. Hover for values.</p>
<h2>Steps</h2>
<p>${strip}</p>
<h2>Features × steps</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="relevance heatmap">
${columnLabels.join("\n")}
${rowLabels.join("\n")}
${rects.join("\n")}
</svg>
</body></html>
`;
}
