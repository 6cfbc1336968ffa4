/**
 * A prediction endpoint for `Deno.serve` (an edge function): `POST /` with a JSON body
 * `{ "x": [[...], ...] }` (one sequence, `seqLen` rows of `inputSize` numbers) answers
 * `{ "output": [[...]], "hidden": [...], "state": [[...]] }` (`seqLen × hiddenSize`, `hiddenSize`,
 * `k × hiddenSize`). Concurrent requests share batched forwards through a `MicroBatcher`.
 *
 * Run it with `deno task serve` (flags: `--hostname 127.0.0.1`, `--port 8000`, `--backend auto`,
 * `--weights model.safetensors` for a state dict of the served `StochasticArrayLSTM(10, 128, 4)`;
 * without weights it serves the seed-42 initialisation), then:
 *
 * ```sh
 * curl -d '{"x": [[1,0,0,0,0,0,0,0,0,0]]}' http://127.0.0.1:8000/
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendName,
  loadSafetensors,
  MicroBatcher,
  type Prediction,
  StochasticArrayLSTM,
} from "../mod.ts";

/** Rows of a `(rows, width)` array as nested JSON arrays. */
function rows(data: Float32Array, width: number): number[][] {
  return Array.from({ length: data.length / width }, (_, r) => [
    ...data.subarray(r * width, (r + 1) * width),
  ]);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Reads `{ "x": number[][] }` into a `(seqLen, inputSize)` tensor, or throws a `TypeError`. */
async function readInput(request: Request): Promise<{ shape: number[]; data: Float32Array }> {
  let body: unknown;
  try {
    body = await request.json();
  } catch (error) {
    throw new TypeError(`the body must be JSON: ${(error as Error).message}`);
  }
  const x = (body as { x?: unknown } | null)?.x;
  const width = Array.isArray(x) && Array.isArray(x[0]) ? x[0].length : -1;
  if (
    !Array.isArray(x) ||
    !x.every((row) =>
      Array.isArray(row) && row.length === width && row.every((v) => typeof v === "number")
    )
  ) {
    throw new TypeError('the body must be { "x": number[][] }: one row of numbers per step');
  }
  return { shape: [x.length, width], data: Float32Array.from(x.flat()) };
}

/**
 * The request handler: `POST` JSON in, JSON out; `400` for a bad request (with the reason),
 * `405` for other methods, `500` when the model fails.
 */
export function createHandler(batcher: MicroBatcher): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "POST") {
      return json(405, { error: 'POST { "x": number[][] } to this endpoint' });
    }
    let prediction: Prediction;
    try {
      prediction = await batcher.predict(await readInput(request));
    } catch (error) {
      const bad = error instanceof TypeError || error instanceof RangeError;
      return json(bad ? 400 : 500, { error: (error as Error).message });
    }
    const H = batcher.model.hiddenSize;
    return json(200, {
      output: rows(prediction.output.data, H),
      hidden: [...prediction.hidden.data],
      state: rows(prediction.state.data, H),
    });
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      hostname: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8000" },
      backend: { type: "string", default: "auto" },
      weights: { type: "string" },
    },
  });
  const model = new StochasticArrayLSTM(10, 128, 4, {
    backend: values.backend as BackendName,
    seed: 42,
  });
  if (values.weights !== undefined) {
    try {
      model.loadStateDict(loadSafetensors(await Deno.readFile(values.weights)));
    } catch (error) {
      console.error(`cannot load --weights ${values.weights}: ${(error as Error).message}`);
      Deno.exit(1);
    }
  }
  const batcher = new MicroBatcher(model, { maxDelayMs: 2, maxBatch: 64 });
  Deno.serve({ hostname: values.hostname, port: Number(values.port) }, createHandler(batcher));
}
