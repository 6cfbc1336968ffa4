/**
 * `explain`: which input tokens a next-token prediction rests on, as the library's relevance
 * heatmap (`renderRelevance`): LRP (`lrp`) for the LSTM family, gradient saliency (`saliency`)
 * otherwise.
 *
 * @module
 */

import {
  detach,
  lrp,
  LSTM,
  relevancePerToken,
  renderRelevance,
  saliency,
  type Tensor,
} from "../../mod.ts";
import { encode, tokenize, UNK, unpredictable } from "./data.ts";
import {
  choiceFlag,
  CliError,
  type CliIO,
  parseFlags,
  readText,
  stringFlag,
  stringFlags,
} from "./io.ts";
import { checkOutputs, writeOutput } from "./files.ts";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, openModel, type TaskModel } from "./model_file.ts";
import { lastRow, unseen } from "./sample.ts";

/** The relevance methods `--method` names, `saliency`'s by their CLI names. */
const SALIENCY_METHODS = {
  "gradient-x-input": "gradientXInput",
  gradient: "gradient",
  "integrated-gradients": "integratedGradients",
} as const;
const METHODS = ["auto", "lrp", "gradient-x-input", "gradient", "integrated-gradients"] as const;
type Method = Exclude<typeof METHODS[number], "auto">;

/** `explain --help`. */
export const EXPLAIN_HELP =
  `Usage: explain --model MODEL.safetensors (--text TEXT | --input FILE) --out FILE.html

Explains the next-token prediction after the input: an HTML page (no scripts) with each token
coloured by its relevance (red for the prediction, blue against it), and a heatmap labelled by
the tokens. Tokens never seen in training are read as <unk>.

The network is Embedding -> recurrent model -> Linear, and the prediction is the Linear layer on
the last hidden state, so the explanation is of the recurrent model and head over the embedded
input: relevance is computed for every embedding feature and a token's relevance is the sum over
its features (the library's relevancePerToken). The score explained is the target's logit.

${MODEL_FLAGS_HELP}  --text TEXT        the input; or
  --input FILE       one input a line; one page each, FILE-1.html, FILE-2.html, ... after --out
  --target TOKEN     the prediction to explain; default: the model's most likely next token
  --method M         ${METHODS.join(" | ")}; default auto: lrp (LRP-epsilon) for the
                     LSTM family, gradient-x-input for GRU (LRP has no rule for it)
  --out FILE         the HTML file to write
`;

const FLAGS = { ...MODEL_FLAGS, ...stringFlags("text", "input", "target", "method", "out") };

/** Runs `explain` with `args`; resolves to the exit status. */
export async function explain(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("explain", args, FLAGS);
  const path = stringFlag(values, "model");
  const out = stringFlag(values, "out");
  const chosen = choiceFlag(values, "method", METHODS, "auto");
  if ((values.text === undefined) === (values.input === undefined)) {
    throw new CliError("give exactly one of --text and --input");
  }
  const inputs = typeof values.text === "string"
    ? [values.text]
    : (await readText(values.input as string, "input")).split("\n").filter((l) => l.trim() !== "");
  // Pages are replaced as before; a folder, a missing folder, or an input as --out is not.
  const inputFiles = [{ flag: "--model", path }];
  if (typeof values.input === "string") inputFiles.push({ flag: "--input", path: values.input });
  await checkOutputs([{ flag: "--out", path: out }], { inputs: inputFiles, overwrite: true });
  const network = await openModel(values);
  try {
    const task = network.task;
    const method: Method = chosen !== "auto"
      ? chosen
      : network.rnn instanceof LSTM
      ? "lrp"
      : "gradient-x-input";
    network.model.train(false);
    const never = unpredictable(task.vocabulary);
    const unk = task.vocabulary.indexOf(UNK);
    const written: string[] = [];
    for (const [index, input] of inputs.entries()) {
      const tokens = tokenize(input, task.tokens).flat();
      if (tokens.length === 0) throw new CliError(`input ${index + 1} holds no token`);
      const { ids, unknown } = encode(tokens, task.vocabulary, `input ${index + 1}`);
      if (unknown.length > 0) io.stderr(`${unseen(`input ${index + 1}`, unknown)}\n`);
      let target: number;
      if (typeof values.target === "string") {
        target = task.vocabulary.indexOf(values.target);
        if (never.includes(target) || target < 0) {
          throw new CliError(
            `--target ${JSON.stringify(values.target)} is not a token the model predicts`,
          );
        }
      } else {
        const row = lastRow(await network.model.forward([ids]));
        target = -1;
        row.forEach((v, id) => {
          if (!never.includes(id) && (target < 0 || v > row[target])) target = id;
        });
      }
      const relevance = await relevanceOf(network, ids, target, method);
      // One value a token: the relevance of its embedding features, summed.
      const perToken = relevancePerToken(relevance);
      const html = renderRelevance({
        shape: [perToken.length, 1],
        data: new Float32Array(perToken),
      }, {
        tokens: tokens.map((token, t) => ids[t] === unk ? `${token} (${UNK})` : token),
        features: ["relevance"],
        title: `${network.spec.class}: why ${JSON.stringify(task.vocabulary[target])} next ` +
          `(${method})`,
      });
      const page = inputs.length === 1 ? out : numbered(out, index + 1);
      await writeOutput(page, html);
      written.push(page);
    }
    io.stdout(`wrote ${written.join(", ")} (${method})\n`);
    return 0;
  } finally {
    network.model.dispose();
  }
}

/** Relevance `(1, T, embeddingSize)` of the embedded tokens for the target's logit. */
async function relevanceOf(
  network: TaskModel,
  ids: number[],
  target: number,
  method: Method,
): Promise<Tensor> {
  const x = detach(await network.embedding.forward([ids]));
  if (method === "lrp") {
    if (!(network.rnn instanceof LSTM)) {
      throw new CliError(
        `--method lrp needs a model of the LSTM family, got ${network.rnn.constructor.name}; ` +
          "use --method gradient-x-input",
      );
    }
    return (await lrp(network.rnn, network.head, x, { target })).relevance;
  }
  const options = { method: SALIENCY_METHODS[method], target };
  return (await saliency(network.rnn, network.head, x, options)).saliency;
}

/** `page.html` → `page-2.html`. */
function numbered(path: string, n: number): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/")
    ? `${path.slice(0, dot)}-${n}${path.slice(dot)}`
    : `${path}-${n}`;
}
