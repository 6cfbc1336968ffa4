/** renderRelevance: a self-contained page, escaped labels, colours by sign, errors. */

import assert from "node:assert/strict";
import { renderRelevance, tensor } from "../mod.ts";

Deno.test("renderRelevance draws a cell per step and feature, escaped, with no scripts", () => {
  const relevance = tensor([1, -1, 0, 0.5, 0, 0, 2, 2, -2, 0, 0, 0], [2, 3, 2]);
  const html = renderRelevance(relevance, {
    sequence: 1,
    tokens: ["<script>alert(1)</script>", "b&c", '"q"'],
    features: ["f'1", "f2"],
    title: "<T>",
  });
  assert.ok(html.startsWith("<!DOCTYPE html>"));
  assert.ok(!/<script|src=|href=/i.test(html));
  assert.ok(html.includes("&#60;script&#62;alert(1)&#60;/script&#62;"));
  assert.ok(html.includes("b&#38;c") && html.includes("f&#39;1") && html.includes("&#60;T&#62;"));
  assert.equal(html.match(/<rect /g)?.length, 6);
  assert.ok(html.includes('fill="rgb(255,0,0)"')); // the largest positive value: full red
  assert.ok(html.includes('fill="rgb(0,0,255)"')); // the largest negative value: full blue
});

Deno.test("renderRelevance rejects wrong shapes and label counts", () => {
  assert.throws(() => renderRelevance(tensor([1, 2], [2])), /relevance must be \(seqLen/);
  assert.throws(
    () => renderRelevance(tensor([1, 2], [2, 1]), { tokens: ["a"] }),
    /options.tokens must be 2 labels/,
  );
  assert.throws(() => renderRelevance(tensor([1, 2], [1, 2, 1]), { sequence: 1 }), /\[0, 1\)/);
});
