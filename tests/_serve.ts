/**
 * A loopback server for the serving tests: the example's handler over `Deno.serve` on
 * 127.0.0.1 (port 0), and a client that posts one sequence.
 *
 * @module
 */

import type { MicroBatcher, Tensor } from "../mod.ts";
import { createHandler } from "../examples/edge_function.ts";
import { isClose, mixed } from "./_assert.ts";

/** The JSON the endpoint answers with. */
export interface Answer {
  output: number[][];
  hidden: number[];
  state: number[][];
}

/** A server on a free loopback port, its client, and the way to stop both. */
export interface Loopback extends AsyncDisposable {
  readonly url: string;
  /** Posts `{ x }` (rows of a `(seqLen, inputSize)` tensor); returns status and JSON body. */
  post(x: Tensor | unknown): Promise<{ status: number; body: Answer & { error?: string } }>;
}

/** Serves `batcher` on 127.0.0.1 with a fresh port. */
export function serveLoopback(batcher: MicroBatcher): Loopback {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createHandler(batcher),
  );
  const client = Deno.createHttpClient({});
  const url = `http://127.0.0.1:${server.addr.port}/`;
  return {
    url,
    async post(x) {
      const body = isTensor(x) ? { x: rowsOf(x) } : x;
      const response = await fetch(url, { method: "POST", body: JSON.stringify(body), client });
      return { status: response.status, body: await response.json() };
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      client.close();
    },
  };
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === "object" && value !== null && "shape" in value && "data" in value;
}

function rowsOf(x: Tensor): number[][] {
  const [T, I] = x.shape;
  return Array.from({ length: T }, (_, t) => [...x.data.subarray(t * I, (t + 1) * I)]);
}

/** Whether `actual` equals `expected` within float32 rounding of a batched run (1e-5). */
export function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>): boolean {
  return isClose(actual, expected, mixed(1e-5));
}
