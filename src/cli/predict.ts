/**
 * `predict`: the model's top-k next tokens for every input line, as JSON lines.
 *
 * @module
 */

import { softmax } from "../../mod.ts";
import { encode, tokenize, unpredictable } from "./data.ts";
import { type CliIO, numberFlag, parseFlags, readText, stringFlag, stringFlags } from "./io.ts";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, openModel } from "./model_file.ts";
import { lastRow } from "./sample.ts";

/** `predict --help`. */
export const PREDICT_HELP = `Usage: predict --model MODEL.safetensors --input FILE [options]

Prints the top-k next tokens after every line of the input as JSON lines:
{"line":1,"input":"...","next":[{"token":"...","p":0.42},...]}
Tokens never seen in training are read as <unk> and listed: "unknown":["..."].

${MODEL_FLAGS_HELP}  --input FILE       one sequence a line (events) or one text a line
  --top N            predictions a line; default 5
`;

const FLAGS = { ...MODEL_FLAGS, ...stringFlags("input", "top") };

/** Runs `predict` with `args`; resolves to the exit status. */
export async function predict(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("predict", args, FLAGS);
  const input = stringFlag(values, "input");
  const top = numberFlag(values, "top", 5, { min: 1, integer: true });
  const lines = (await readText(input, "input")).split("\n");
  const network = await openModel(values);
  try {
    const task = network.task;
    const never = unpredictable(task.vocabulary);
    for (const [index, line] of lines.entries()) {
      const tokens = tokenize(line, task.tokens).flat();
      if (tokens.length === 0) continue;
      const { ids, unknown } = encode(tokens, task.vocabulary, `${input} line ${index + 1}`);
      const row = lastRow(await network.model.forward([ids])).slice();
      for (const id of never) row[id] = -Infinity;
      const p = softmax({ shape: [row.length], data: row }).data;
      const best = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b).slice(0, top);
      io.stdout(
        JSON.stringify({
          line: index + 1,
          input: line,
          next: best.map((id) => ({ token: task.vocabulary[id], p: Number(p[id].toPrecision(6)) })),
          // Tokens never seen in training, read as <unk>.
          ...(unknown.length > 0 ? { unknown } : {}),
        }) + "\n",
      );
    }
    return 0;
  } finally {
    network.model.dispose();
  }
}
