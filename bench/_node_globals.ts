/**
 * What this package's WASM backend needs from a web-style runtime, made from Node's own APIs, so
 * that `bench/node_forward.ts` runs the same code under Node as under Deno: a `Worker` over
 * `node:worker_threads` and `navigator.hardwareConcurrency` (Node 20 has neither global). A no-op
 * under Deno. Benchmarks only: the package itself targets Deno.
 *
 * A worker's module URL is the backend's `worker.ts` next to the bundle; the Node run loads the
 * bundled `worker.js` in its place (`compare.ts` writes both).
 *
 * @module
 */

import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker as NodeWorker } from "node:worker_threads";

/**
 * Runs in the Node worker before the module: the web globals the module uses (`self`,
 * `postMessage`, `onmessage`), with messages delivered only once the module has set `onmessage`
 * (a port queues messages until it has a listener).
 */
const PRELUDE = `
const { parentPort, workerData } = require("node:worker_threads");
const { pathToFileURL } = require("node:url");
globalThis.self = globalThis;
globalThis.postMessage = (message, transfer) => parentPort.postMessage(message, transfer);
import(pathToFileURL(workerData).href).then(() => {
  parentPort.on("message", (data) => globalThis.onmessage({ data }));
});
`;

/** The part of the web `Worker` that `src/backends/wasm/thread.ts` uses. */
class NodeWebWorker {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: { message: string; preventDefault(): void }) => void) | null = null;
  readonly #worker: NodeWorker;

  constructor(url: URL | string) {
    const file = fileURLToPath(url).replace(/\.ts$/, ".js");
    this.#worker = new NodeWorker(PRELUDE, { eval: true, workerData: file });
    this.#worker.on("message", (data: unknown) => this.onmessage?.({ data }));
    this.#worker.on("error", (error: Error) => {
      this.onerror?.({ message: error.message, preventDefault() {} });
    });
  }

  postMessage(message: unknown, transfer: Transferable[] = []): void {
    this.#worker.postMessage(message, transfer as ArrayBuffer[]);
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

if (typeof Deno === "undefined") {
  const global = globalThis as Record<string, unknown>;
  global.Worker ??= NodeWebWorker;
  global.navigator ??= { hardwareConcurrency: availableParallelism() };
}
