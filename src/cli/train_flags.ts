/**
 * `train`'s flags and how a resumed run gets them: the checkpoint records every flag, `--resume
 * FILE` alone takes them all from it, and flags given beside it that contradict it are refused in
 * one message that lists them all.
 *
 * @module
 */

import { BACKEND_CHOICES, CliError, type FlagSpec, stringFlags } from "./io.ts";
import {
  MODEL_CLASSES,
  type ModelSpec,
  type TaskMetadata,
  type TrainingState,
} from "./model_file.ts";

/** `train --help`. */
export const TRAIN_HELP = `Usage: train --data FILE --out MODEL.safetensors [options]
       train --resume MODEL.safetensors [--epochs N | --max-steps N]

Trains Embedding -> recurrent model -> Linear (a Sequential) to predict the next token at every
step. Work is kept: a checkpoint is written atomically every --save-every, on Ctrl-C (exit 130)
or SIGTERM (exit 143), and at the end; --resume continues the run exactly.

  --data FILE          training data (UTF-8 text; --encoding latin1 for Latin-1)
  --format F           text (a causal language model) | events (one sequence of event names a line); default text
  --tokens T           text only: chars | words; default chars
  --encoding E         utf-8 | latin1; default utf-8
  --model M            ${MODEL_CLASSES.join(" | ")}; default ArrayLSTM (GRU runs on the
                       TypeScript reference on every backend)
  --hidden N           hidden units; default 64
  --k N                lanes of the array variants; default 4
  --embedding N        embedding size; default 32
  --seq-len N          steps per training window; default 32
  --batch N            windows per step; default 16
  --epochs N           passes over the training windows; default 1
  --max-steps N        stop after N steps in all (resumed steps count); default: no limit
  --lr X               Adam learning rate; default 0.01
  --clip X             gradient norm clip (0: none); default 1
  --seed N             weights and batch order; default 1
  --validation X       held-out fraction (text: the tail; events: the last lines); default 0.1
  --eval-every N       steps between validations; default: 10 validations a run
  --val-batches N      batches a validation reads at most; default 20
  --backend B          ${BACKEND_CHOICES}; default auto
  --out FILE           the model file (also the checkpoint); relative paths are the caller's
  --overwrite          replace an existing --out (or --plot)
  --keep K             last (--out is the last step) | best (--out is the best validation loss,
                       the last step goes to OUT.last.safetensors); default last
  --save-every E       a checkpoint every E steps (e.g. 100) or minutes (e.g. 5m, 30s); default 5m
  --plot FILE.svg      train and validation loss curves (also written on interrupt)
  --resume FILE        continue a run from its checkpoint: every flag comes from it; --out
                       defaults to FILE; --epochs and --max-steps may extend the run
  --data-changed ok    resume on a data file whose contents differ from the checkpoint's
`;

/** Flags that shape the run: a resumed run takes them from its checkpoint and may not change them. */
export const FIXED_FLAGS = [
  "format",
  "tokens",
  "encoding",
  "model",
  "hidden",
  "k",
  "embedding",
  "seq-len",
  "batch",
  "lr",
  "clip",
  "seed",
  "validation",
  "keep",
] as const;

/**
 * Flags a resumed run takes from its checkpoint unless given: the data, the plot, how long the
 * run is, how often it validates and saves. (`--out` defaults to the checkpoint itself.)
 */
export const CARRIED_FLAGS = [
  "data",
  "plot",
  "backend",
  "epochs",
  "max-steps",
  "eval-every",
  "val-batches",
  "save-every",
] as const;

/** `train`'s flags for `parseFlags`. */
export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  ...stringFlags(...FIXED_FLAGS, ...CARRIED_FLAGS, "out", "resume", "data-changed"),
  overwrite: { type: "boolean" },
};

/** Every flag a checkpoint records. */
export type RecordedFlags = Record<string, string | number>;

/** The flags a checkpoint holds, with those of older files derived from its model and task. */
export function recordedFlags(
  spec: ModelSpec,
  task: TaskMetadata,
  state: TrainingState,
): RecordedFlags {
  const derived: RecordedFlags = {
    model: spec.class,
    hidden: spec.args.hiddenSize,
    embedding: spec.args.inputSize,
    format: task.format,
  };
  if (spec.args.k !== undefined) derived.k = spec.args.k;
  if (task.tokens !== "events") derived.tokens = task.tokens;
  return { ...derived, ...state.flags };
}

function same(given: string, saved: string | number): boolean {
  const [a, b] = [Number(given), Number(saved)];
  return given === String(saved) || (given.trim() !== "" && Number.isFinite(a) && a === b);
}

/**
 * The flags of a resumed run: `values` (what was given) completed from the checkpoint's
 * `recorded` flags (`path` names the checkpoint in messages). Throws one `CliError` listing every given flag that contradicts the checkpoint.
 */
export function resumedFlags(
  values: Record<string, unknown>,
  recorded: RecordedFlags,
  path: string,
): Record<string, unknown> {
  const conflicts = FIXED_FLAGS.filter((name) =>
    typeof values[name] === "string" &&
    !(name in recorded ? same(values[name] as string, recorded[name]) : false)
  );
  if (conflicts.length > 0) {
    const given = conflicts.map((name) => `--${name} ${values[name]}`).join(", ");
    const saved = conflicts.map((name) =>
      name in recorded ? `${name} ${recorded[name]}` : `no ${name}`
    ).join(", ");
    throw new CliError(
      `${given} ${conflicts.length === 1 ? "differs" : "differ"} from the run in ${path} ` +
        `(${saved}): --resume continues that run with its own flags; leave ${
          conflicts.length === 1 ? "it" : "them"
        } out, or start a new run without --resume`,
    );
  }
  const result: Record<string, unknown> = { ...values };
  for (const name of [...FIXED_FLAGS, ...CARRIED_FLAGS]) {
    if (result[name] === undefined && recorded[name] !== undefined) {
      result[name] = String(recorded[name]);
    }
  }
  return result;
}

/** `--save-every`: a number of steps, or a time (`5m`, `30s`, `1h`). */
export type SaveEvery = { steps: number } | { ms: number };

/** Parses `--save-every`, with a one-line error for anything else. */
export function saveEveryFlag(raw: unknown): SaveEvery {
  const text = typeof raw === "string" ? raw.trim() : "5m";
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|min|h)?$/.exec(text);
  const value = match === null ? NaN : Number(match[1]);
  if (match === null || !(value > 0) || (match[2] === undefined && !Number.isInteger(value))) {
    throw new CliError(
      `--save-every must be a number of steps (e.g. 100) or a time (e.g. 5m, 30s, 1h), got ` +
        JSON.stringify(raw),
    );
  }
  const unit = match[2];
  if (unit === undefined) return { steps: value };
  return { ms: value * (unit === "s" ? 1000 : unit === "h" ? 3_600_000 : 60_000) };
}
