/**
 * `explain`: which input tokens a prediction rests on, as an HTML heatmap readable without
 * scripts (a coloured background per token, its score in the tooltip and in a table).
 *
 * @module
 */

import type { BackendName } from "../../mod.ts";
import { decode, encode, PAD, tokenize } from "./data.ts";
import {
  choiceFlag,
  CliError,
  type CliIO,
  parseFlags,
  readText,
  stringFlag,
  writeOutput,
} from "./io.ts";
import { loadNetwork } from "./model_file.ts";
import { escapeXml } from "./plot.ts";
import { lastRow } from "./sample.ts";
import { METHODS } from "./saliency.ts";

/** `explain --help`. */
export const EXPLAIN_HELP =
  `Usage: explain --model MODEL.safetensors (--text TEXT | --input FILE) --out FILE.html

Renders how much every input token contributed to the next-token prediction, as an HTML heatmap
(red raised the prediction, blue lowered it); one section per input line.

  --model FILE     a model written by train
  --text TEXT      the input; or
  --input FILE     one input a line
  --target TOKEN   the prediction to explain; default: the model's most likely next token
  --method M       ${Object.keys(METHODS).join(" | ")}; default gradient-x-input
  --out FILE       the HTML file to write
  --backend B      auto | wasm | js | webgpu; default auto
`;

const FLAGS = {
  model: { type: "string" },
  text: { type: "string" },
  input: { type: "string" },
  target: { type: "string" },
  method: { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `explain` with `args`; resolves to the exit status. */
export async function explain(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("explain", args, FLAGS);
  if (values.help) {
    io.stdout(EXPLAIN_HELP);
    return 0;
  }
  const path = stringFlag(values, "model");
  const out = stringFlag(values, "out");
  const methodName = choiceFlag(values, "method", Object.keys(METHODS), "gradient-x-input");
  const method = METHODS[methodName];
  if (typeof method === "string") throw new CliError(`--method ${methodName}: ${method}`);
  if ((values.text === undefined) === (values.input === undefined)) {
    throw new CliError("give exactly one of --text and --input");
  }
  const inputs = typeof values.text === "string"
    ? [values.text]
    : (await readText(values.input as string, "input")).split("\n").filter((l) => l.trim() !== "");
  const backend = choiceFlag(values, "backend", ["auto", "wasm", "js", "webgpu"], "auto");
  const { file, network } = await loadNetwork(path, backend as BackendName);
  try {
    const task = file.meta.task!;
    const sections: string[] = [];
    for (const [index, input] of inputs.entries()) {
      const tokens = tokenize(input, task.tokens).flat();
      if (tokens.length === 0) throw new CliError(`input ${index + 1} holds no token`);
      const ids = encode(tokens, task.vocabulary, `input ${index + 1}`);
      let target: number;
      if (typeof values.target === "string") {
        [target] = encode([values.target], task.vocabulary, "--target");
      } else {
        network.train(false);
        const row = lastRow((await network.forward([ids])).logits);
        target = row.reduce((best, v, id) => id !== PAD && v > row[best] ? id : best, PAD + 1);
      }
      const scores = await method(network, ids, target);
      sections.push(section(tokens, scores, task.vocabulary[target], task.tokens));
    }
    await writeOutput(out, page(`${file.meta.model.class}: ${methodName}`, sections));
    io.stdout(
      `wrote ${out}: ${inputs.length} explanation${
        inputs.length === 1 ? "" : "s"
      } (${methodName})\n`,
    );
    return 0;
  } finally {
    network.dispose();
  }
}

/** One input as coloured tokens, then a table of the scores. */
function section(tokens: string[], scores: number[], target: string, mode: string): string {
  const scale = Math.max(1e-12, ...scores.map(Math.abs));
  const spans = tokens.map((token, t) => {
    const s = scores[t] / scale;
    const color = s >= 0
      ? `rgba(214, 39, 40, ${s.toFixed(3)})`
      : `rgba(31, 119, 180, ${(-s).toFixed(3)})`;
    const shown = token === " " ? "&nbsp;" : token === "\n" ? "⏎" : escapeXml(token);
    return `<span style="background:${color}" title="${
      scores[t].toExponential(3)
    }">${shown}</span>`;
  });
  const rows = tokens.map((token, t) =>
    `<tr><td>${t}</td><td><code>${escapeXml(JSON.stringify(token))}</code></td>` +
    `<td>${scores[t].toExponential(3)}</td></tr>`
  );
  return `<section><h2>next: <code>${escapeXml(JSON.stringify(target))}</code> after ` +
    `<code>${escapeXml(decode(tokens.slice(-12), mode as "chars"))}</code></h2>\n` +
    `<p class="tokens">${spans.join(mode === "chars" ? "" : " ")}</p>\n` +
    `<table><tr><th>#</th><th>token</th><th>relevance</th></tr>${rows.join("")}</table></section>`;
}

function page(title: string, sections: string[]): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}
.tokens{font-family:monospace;font-size:1.2em;line-height:1.8;white-space:pre-wrap}
table{border-collapse:collapse}td,th{padding:0 .6em;text-align:left}</style></head>
<body><h1>${escapeXml(title)}</h1>
<p>Red tokens raised the log-probability of the prediction, blue ones lowered it; the colour's
strength is the score relative to the largest in its input. Hover a token for its score.</p>
${sections.join("\n")}
</body></html>
`;
}
