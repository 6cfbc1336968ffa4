/**
 * The command line keeps work and refuses bad input (issues 19 and 21): SIGINT and SIGTERM save a
 * checkpoint and exit 130 / 143, `--resume FILE` alone ends the run at its step, checkpoints are
 * written atomically, outputs are checked before training, data files are checked, unseen tokens
 * read as `<unk>`, and wrong files or flags get one line that says what to do.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  loadModel,
  readModelConfig,
  readModelMetadata,
  readSafetensors,
  type SafetensorsContents,
  saveModel,
  saveSafetensors,
  Sequential,
} from "../mod.ts";
import { writeOutput } from "../src/cli/files.ts";
import { assertRefused, type Ran, run, TEXT, trainArgs } from "./_cli.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const INTEROP = new URL("./testdata/interop_files/", import.meta.url);
const TINY = ["--hidden", "4", "--k", "2", "--embedding", "4", "--seq-len", "8", "--batch", "4"];

/** Trains a TINY model on `data` into `out` on js for `steps` steps, with the other `flags`. */
function trainTiny(data: string, out: string, steps: number, ...flags: string[]): Promise<Ran> {
  return run(trainArgs(data, out, steps, ...TINY, ...flags));
}

/** A folder with TEXT and a TINY model trained on it for `steps` steps, at `model`. */
async function trained(
  steps: number,
  ...flags: string[]
): Promise<{ dir: string; text: string; model: string }> {
  const { dir, text } = await folder();
  const model = `${dir}/m.safetensors`;
  const ran = await trainTiny(text, model, steps, ...flags);
  assert.equal(ran.status, 0, ran.stderr);
  return { dir, text, model };
}

/** The command line in a child process that may write in `dir`, on `args`. */
function child(dir: string, args: string[], options: Deno.CommandOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", `--allow-write=${dir}`, MAIN, ...args],
    ...options,
  });
}

async function folder(): Promise<{ dir: string; text: string }> {
  const dir = await Deno.makeTempDir({ prefix: "arraylstm_cli_work_" });
  await Deno.writeTextFile(`${dir}/text.txt`, TEXT);
  return { dir, text: `${dir}/text.txt` };
}

/** The metadata of a model file of `train`. */
interface Meta {
  training: {
    step: number;
    bestValidation?: number;
    history: { validation: [number, number][] };
  };
}

async function metaOf(path: string): Promise<Meta> {
  return readModelMetadata<Meta>(await Deno.readFile(path));
}

/** Asserts that the model file `b` holds the tensors of `a`, to the bit; resolves to `b`'s file. */
async function assertSameTensors(a: string, b: string): Promise<SafetensorsContents> {
  const [x, y] = await Promise.all(
    [a, b].map(async (p) => readSafetensors(await Deno.readFile(p))),
  );
  for (const name of Object.keys(x.tensors)) {
    assert.deepEqual(y.tensors[name].data, x.tensors[name].data, name);
  }
  return y;
}

/** Asserts that `sample` gives from the model file `b` the text it gives from `a`. */
async function assertSameSample(a: string, b: string): Promise<void> {
  const args = ["--prime", "the ", "--length", "20", "--seed", "3", "--backend", "js"];
  const [x, y] = await Promise.all(
    [a, b].map((model) => run(["sample", "--model", model, ...args])),
  );
  assert.equal(y.status, 0, y.stderr);
  assert.equal(y.stdout, x.stdout);
}

/** A stopped run: already aborted, so it stops (and saves) after its first step. */
function stopped(reason?: string): AbortSignal {
  const stop = new AbortController();
  stop.abort(reason);
  return stop.signal;
}

Deno.test("SIGTERM and SIGINT save a checkpoint and exit 143 / 130; --resume alone ends at the run's step", async () => {
  const { dir, text } = await folder();
  const total = 3000; // long enough that the signal lands mid-run, short to resume
  for (const [signal, status] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    const out = `${dir}/${signal}.safetensors`;
    const training = child(
      dir,
      trainArgs(text, out, total, ...TINY, "--epochs", "1000", "--plot", `${dir}/${signal}.svg`),
      { stdout: "piped", stderr: "piped" },
    ).spawn();
    let stderr = "";
    const reader = training.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!/^step \d+\/\d+ /m.test(stderr)) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    const sentAt = performance.now();
    training.kill(signal);
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    const [{ code }] = await Promise.all([training.status, training.stdout.cancel()]);
    assert.equal(code, status, stderr);
    assert.ok(performance.now() - sentAt < 5000, "stopped within seconds");
    assert.match(stderr, new RegExp(`interrupted \\(${signal}\\) at step \\d+: checkpoint saved`));
    const step = (await metaOf(out)).training.step;
    assert.ok(step >= 1 && step < total, `stopped at ${step}`);
    assert.match(await Deno.readTextFile(`${dir}/${signal}.svg`), /^<svg/);
    if (signal === "SIGTERM") {
      const resumed = await run(["train", "--resume", out]);
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stderr, new RegExp(`steps ${step + 1}\\.\\.${total}`));
      assert.equal((await metaOf(out)).training.step, total);
    }
  }
});

Deno.test("--resume FILE alone continues exactly; other data is refused unless --data-changed ok", async () => {
  const { dir, text } = await folder();
  const flags = ["--data", text, "--backend", "js", "--max-steps", "5", "--seed", "2", ...TINY];
  assert.equal((await run(["train", ...flags, "--out", `${dir}/whole.safetensors`])).status, 0);
  const part = `${dir}/part.safetensors`;
  const interrupted = await run(
    ["train", ...flags, "--out", part, "--plot", `${dir}/p.svg`],
    stopped(),
  );
  assert.equal(interrupted.status, 130);
  assert.match(await Deno.readTextFile(`${dir}/p.svg`), /<polyline/); // --plot on interrupt

  await Deno.writeTextFile(`${dir}/other.txt`, TEXT.toUpperCase() + TEXT);
  const other = await run(["train", "--resume", part, "--data", `${dir}/other.txt`]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /is not the data the run in .* was trained on .* --data-changed ok/);

  const resumed = await run(["train", "--resume", part]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`saved ${part}`));
  await assertSameTensors(`${dir}/whole.safetensors`, part);
  assert.equal((await metaOf(part)).training.step, 5);

  const more = await run([
    "train",
    "--resume",
    part,
    "--max-steps",
    "6",
    "--data",
    `${dir}/other.txt`,
    "--data-changed",
    "ok",
  ]);
  assert.equal(more.status, 0, more.stderr);
  assert.equal((await metaOf(part)).training.step, 6);
});

Deno.test("outputs are checked before training: the data file, an existing file, a folder, a missing folder", async () => {
  const { dir, text } = await folder();
  const before = await Deno.readTextFile(text);
  const train = (out: string, ...flags: string[]) => trainTiny(text, out, 1, ...flags);
  const cases: [string[], RegExp][] = [
    [[text, "--overwrite"], /--out .*text\.txt is the --data file/],
    [[`${dir}/./text.txt`, "--overwrite"], /is the --data file/],
    [[`${dir}/m2.safetensors`, "--plot", text], /--plot .* is the --data file/],
    [[dir], /--out .* is a folder; name a file in it/],
    [[`${dir}/missing/m.safetensors`], /the folder .*missing does not exist/],
    [[`${dir}/m.safetensors`, "--keep", "best", "--validation", "0"], /needs --validation/],
  ];
  for (const [[out, ...flags], pattern] of cases) {
    const refused = await train(out, ...flags);
    assertRefused(refused, pattern, ["--out", out, ...flags].join(" "));
    assert.doesNotMatch(refused.stderr, /ArrayLSTM\(/, "refused before any work");
  }
  assert.equal(await Deno.readTextFile(text), before);

  const out = `${dir}/m.safetensors`;
  assert.equal((await train(out)).status, 0);
  const again = await train(out);
  assert.equal(again.status, 1);
  assert.match(
    again.stderr,
    /m\.safetensors exists; pass --overwrite to replace it, or --resume it/,
  );
  assert.equal((await train(out, "--overwrite")).status, 0);

  await Deno.mkdir(`${dir}/ro`, { mode: 0o555 });
  const rootWritesAnywhere = await Deno.writeTextFile(`${dir}/ro/probe`, "").then(
    () => true,
    () => false,
  );
  if (!rootWritesAnywhere) {
    const readOnly = await train(`${dir}/ro/m.safetensors`);
    assert.match(readOnly.stderr, /cannot create files in .*ro/);
  }
});

Deno.test("checkpoints are written to a temporary file and renamed: a failed write leaves the old file", async () => {
  const { dir } = await folder();
  const path = `${dir}/m.safetensors`;
  await writeOutput(path, "the previous checkpoint");
  const diskFull = () => Promise.reject(new Error("No space left on device (os error 28)"));
  await assert.rejects(writeOutput(path, "x".repeat(1 << 20), diskFull), /No space left/);
  assert.equal(await Deno.readTextFile(path), "the previous checkpoint");
  const left = [];
  for await (const entry of Deno.readDir(dir)) left.push(entry.name);
  assert.deepEqual(left.sort(), ["m.safetensors", "text.txt"]);
});

Deno.test("--keep best: --out holds the best validation loss, OUT.last the last step; periodic saves", async () => {
  const { dir, text } = await folder();
  const out = `${dir}/m.safetensors`;
  const trained = await trainTiny(
    text,
    out,
    6,
    "--eval-every",
    "2",
    "--val-batches",
    "1",
    "--keep",
    "best",
  );
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /step 2: validating on 1 batches/);
  assert.match(trained.stderr, /^step 1\/6 · [\d.]+ steps\/s · loss [\d.]+ · ETA \d+s$/m);
  const [best, last] = [await metaOf(out), await metaOf(`${dir}/m.last.safetensors`)];
  assert.equal(last.training.step, 6);
  assert.ok(best.training.step <= 6 && best.training.step % 2 === 0);
  assert.equal(
    best.training.bestValidation,
    Math.min(
      ...last.training.history.validation.map(([, loss]) => loss),
    ),
  );

  // A diverging run stops with a message and keeps its last good checkpoint.
  const diverged = await trainTiny(
    text,
    `${dir}/d.safetensors`,
    50,
    "--lr",
    "1e38",
    "--clip",
    "0",
    "--save-every",
    "1",
  );
  assert.equal(diverged.status, 1);
  assert.match(diverged.stderr, /^error: step \d+: .* training diverged and stopped; /m);
  assert.equal(diverged.stderr.trim().split("\n").at(-1), diverged.stderr.match(/^error.*/m)![0]);
  const kept = /keeps the checkpoint of step (\d+)/.exec(diverged.stderr);
  if (kept !== null) {
    assert.equal((await metaOf(`${dir}/d.safetensors`)).training.step, Number(kept[1]));
    const sampled = await run(["sample", "--model", `${dir}/d.safetensors`, "--length", "3"]);
    assert.equal(sampled.status, 0, sampled.stderr); // the kept checkpoint is finite
  }
});

Deno.test("bad data files are refused with one line: binary, not UTF-8 (Latin-1 accepted), too small; raw logs warned", async () => {
  const { dir } = await folder();
  const train = (data: string, ...flags: string[]) =>
    trainTiny(data, `${dir}/m${crypto.randomUUID()}.safetensors`, 1, ...flags);
  await Deno.writeFile(`${dir}/nul.bin`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0]));
  await Deno.writeFile(`${dir}/ctl.bin`, new Uint8Array(200).map((_, i) => (i % 3 ? 0x41 : 1)));
  const latin1 = new TextEncoder().encode("caf\u00e9 ".repeat(40));
  const bytes = Uint8Array.from(
    Array.from("caf\u00e9 ".repeat(40), (c) => c.charCodeAt(0)),
  );
  await Deno.writeFile(`${dir}/latin1.txt`, bytes);
  await Deno.writeFile(`${dir}/utf8.txt`, latin1);
  await Deno.writeTextFile(`${dir}/tiny.txt`, "hello");
  const cases: [string, string[], RegExp][] = [
    ["nul.bin", [], /nul\.bin looks binary \(a NUL byte at offset 7\)/],
    [
      "ctl.bin",
      [],
      /ctl\.bin looks binary: 34 % of its first 200 bytes are control characters \(the first at offset 0\)/,
    ],
    [
      "latin1.txt",
      [],
      /latin1\.txt is not valid UTF-8: byte 0xe9 at offset 3 \(line 1\); if it is Latin-1, pass --encoding latin1/,
    ],
    [
      "tiny.txt",
      [],
      /tiny\.txt is too small for --validation 0\.1: its 5 tokens leave fewer than 2 for validation; it needs at least 20 tokens/,
    ],
  ];
  for (const [name, flags, pattern] of cases) {
    assertRefused(await train(`${dir}/${name}`, ...flags), pattern, name);
  }
  const accepted = await train(`${dir}/latin1.txt`, "--encoding", "latin1");
  assert.equal(accepted.status, 0, accepted.stderr);
  assert.equal((await train(`${dir}/utf8.txt`)).status, 0);
  assert.equal((await train(`${dir}/tiny.txt`, "--validation", "0")).status, 0);

  const logs = Array.from(
    { length: 60 },
    (_, i) => `2024-03-${10 + (i % 20)} 12:${10 + i}:07 status installed libfoo:amd64 1.2.${i}`,
  );
  await Deno.writeTextFile(`${dir}/dpkg.log`, logs.join("\n") + "\n");
  const raw = await train(`${dir}/dpkg.log`, "--format", "events", "--seq-len", "4");
  assert.equal(raw.status, 0, raw.stderr);
  assert.match(
    raw.stderr,
    /warning: .*dpkg\.log looks like raw log lines: \d+ of its \d+ distinct events are dates, times, versions or numbers \(e\.g\. line 1: "2024-03-10 12:10:07 status/,
  );
});

Deno.test("unseen tokens read as <unk> in sample and explain; the heatmap is labelled by the tokens", async () => {
  const { dir, model } = await trained(2, "--tokens", "words");
  const sampled = await run(["sample", "--model", model, "--prime", "the zebra", "--length", "5"]);
  assert.equal(sampled.status, 0, sampled.stderr);
  assert.match(sampled.stderr, /--prime: "zebra" never seen in training, read as <unk>/);
  assert.doesNotMatch(sampled.stdout, /<unk>/);
  const page = `${dir}/why.html`;
  const explained = await run([
    "explain",
    "--model",
    model,
    "--text",
    "the zebra sat",
    "--out",
    page,
  ]);
  assert.equal(explained.status, 0, explained.stderr);
  const html = await Deno.readTextFile(page);
  assert.match(html, />zebra \(&#60;unk&#62;\)<\/text>/); // a column labelled by its token
  assert.match(html, />sat<\/text>/);
  assert.match(html, />relevance<\/text>/); // one row: relevance summed per token
  assert.doesNotMatch(html, />x0</);
});

Deno.test("messages: --k -1 as --k=-1, NaN weights, a .pt or a text file given as a model", async () => {
  const { dir, text } = await folder();
  const [spaced, joined] = await Promise.all([
    run(["train", "--data", text, "--out", `${dir}/a`, "--k", "-1"]),
    run(["train", "--data", text, "--out", `${dir}/a`, "--k=-1"]),
  ]);
  assert.equal(spaced.status, 1);
  assert.equal(spaced.stderr, joined.stderr);
  assert.match(spaced.stderr, /--k must be an integer in \[1, 64\], got "-1"/);

  const model = `${dir}/m.safetensors`;
  await trainTiny(text, model, 1);
  const { tensors, metadata } = readSafetensors(await Deno.readFile(model));
  tensors["1.i2h.weight"].data[3] = NaN;
  await Deno.writeFile(`${dir}/nan.safetensors`, saveSafetensors(tensors, metadata));
  const pt = new URL("lstm_1layer.pt", INTEROP).pathname;
  const cases: [string[], RegExp][] = [
    [
      ["sample", "--model", `${dir}/nan.safetensors`],
      /the model's weights are not finite \(NaN in 1\.i2h\.weight\[3\]\)/,
    ],
    [
      ["predict", "--model", pt, "--input", text],
      /lstm_1layer\.pt is a PyTorch file, not a model of train: convert it with `convert --from torch/,
    ],
    [["explain", "--model", pt, "--text", "a", "--out", `${dir}/e.html`], /is a PyTorch file/],
    [["sample", "--model", text], /text\.txt is a text file, not a model/],
    [["train", "--resume", `${dir}/nan.safetensors`], /weights are not finite/],
  ];
  for (const [args, pattern] of cases) {
    const refused = await run(args);
    assertRefused(refused, pattern, args.join(" "));
    assert.doesNotMatch(refused.stderr, /header length|flat index/);
  }
});

Deno.test("`deno task cli` resolves relative paths against the caller's folder (INIT_CWD)", async () => {
  const { dir } = await folder();
  const { code, stderr } = await child(dir, trainArgs("text.txt", "m.safetensors", 1, ...TINY), {
    cwd: new URL("..", import.meta.url).pathname,
    env: { INIT_CWD: dir },
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.ok((await Deno.stat(`${dir}/m.safetensors`)).isFile);
});

Deno.test("loadModel reads a file of train as a Sequential, and the CLI reads a saveModel Sequential with a vocabulary", async () => {
  const { dir, model } = await trained(2);
  const bytes = await Deno.readFile(model);
  const network = loadModel(bytes, { backend: "js", expect: Sequential });
  const { vocabulary, tokens } = readModelMetadata<{ vocabulary: string[]; tokens: string }>(bytes);
  assert.equal(tokens, "chars");
  const ids = [[vocabulary.indexOf("t"), vocabulary.indexOf("h")]];
  const logits = await network.forward(ids);
  assert.deepEqual(logits.shape, [1, 2, vocabulary.length]);

  // The same network saved by saveModel with its vocabulary: sample reads it, and gives the same text.
  const saved = `${dir}/saved.safetensors`;
  await Deno.writeFile(saved, saveModel(network, { metadata: { vocabulary, tokens: "chars" } }));
  await assertSameSample(model, saved);
  network.dispose();
});

/** A file of `train` as the CLI wrote it before its files were saveModel files. */
function oldFile(bytes: Uint8Array): Uint8Array {
  const { tensors } = readSafetensors(bytes);
  const [embedding, rnn] = (readModelConfig(bytes) as { layers: { args: number[] }[] }).layers;
  const rnnClass = (readModelConfig(bytes) as { layers: { class: string }[] }).layers[1].class;
  const { format, tokens, vocabulary, training } = readModelMetadata(bytes);
  const parts = ["embedding.", "rnn.", "head."];
  const renamed = Object.fromEntries(
    Object.entries(tensors).map((
      [name, t],
    ) => [name.startsWith("optimizer.") ? name : parts[Number(name[0])] + name.slice(2), t]),
  );
  const [inputSize, hiddenSize, k] = rnn.args;
  const meta = {
    version: 1,
    model: { class: rnnClass, args: { inputSize, hiddenSize, k } },
    task: { format, tokens, vocabulary, embeddingSize: embedding.args[1] },
    training,
  };
  return saveSafetensors(renamed, { arraylstm: JSON.stringify(meta) });
}

Deno.test('files of train are saveModel files; older ones (metadata "arraylstm") sample, inspect and resume alike', async () => {
  const { dir, text } = await folder();
  const model = `${dir}/m.safetensors`;
  const flags = ["--data", text, "--backend", "js", "--seed", "5", ...TINY];
  const trained = await run(["train", ...flags, "--out", model, "--max-steps", "2"]);
  assert.equal(trained.status, 0, trained.stderr);
  const bytes = await Deno.readFile(model);
  assert.equal(readModelConfig(bytes).class, "Sequential");
  assert.ok(Object.keys(readSafetensors(bytes).tensors).includes("optimizer.0.expAvg"));
  const old = `${dir}/old.safetensors`;
  await Deno.writeFile(old, oldFile(bytes));
  assert.ok("arraylstm" in readSafetensors(await Deno.readFile(old)).metadata);

  await assertSameSample(model, old);
  const inspected = await run(["inspect", old]);
  assert.match(inspected.stdout, /class +ArrayLSTM[^]*training +step 2/);
  assert.match(inspected.stdout, /rnn\.i2h\.weight +\[32, 4\]/); // the file's own names

  // Resumed from the old file, the run ends as the uninterrupted one, in a saveModel file.
  const whole = await run([
    "train",
    ...flags,
    "--out",
    `${dir}/whole.safetensors`,
    "--max-steps",
    "3",
  ]);
  assert.equal(whole.status, 0, whole.stderr);
  const resumed = await run(["train", "--resume", old, "--max-steps", "3"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  const resumedFile = await assertSameTensors(`${dir}/whole.safetensors`, old);
  assert.ok(!("arraylstm" in resumedFile.metadata));
});

Deno.test("a model file whose metadata claims a huge model is refused by `sample` before allocating", async () => {
  const { dir, text, model } = await trained(1);
  const bytes = await Deno.readFile(model);
  const { tensors, metadata } = readSafetensors(bytes);
  // ArrayLSTM(4, 30000, 2) would take gigabytes: its claim must be checked against the tensors.
  const config = JSON.parse(metadata["arraylstm.model"]);
  config.layers[1].args[1] = 30000;
  config.layers[2].args[0] = 30000;
  await Deno.writeFile(
    `${dir}/huge.safetensors`,
    saveSafetensors(tensors, { ...metadata, "arraylstm.model": JSON.stringify(config) }),
  );
  const old = readSafetensors(oldFile(bytes));
  const meta = JSON.parse(old.metadata.arraylstm);
  meta.model.args.hiddenSize = 30000;
  await Deno.writeFile(
    `${dir}/huge_old.safetensors`,
    saveSafetensors(old.tensors, { arraylstm: JSON.stringify(meta) }),
  );
  for (const name of ["huge", "huge_old"]) {
    for (const command of ["sample", "predict"]) {
      const args = [command, "--model", `${dir}/${name}.safetensors`, "--input", text];
      assertRefused(
        await run(command === "sample" ? args.slice(0, 3) : args),
        /its tensors do not fit the Sequential .*refused before building the model/,
        `${command} ${name}`,
      );
    }
  }
});
