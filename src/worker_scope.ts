/**
 * The global scope of a module Worker, typed without the `deno.worker` lib (which a published
 * package may not switch on with a triple-slash directive, and which the `dom` lib contradicts by
 * typing `self` as a window).
 *
 * @module
 */

/** The parts of a worker's global scope that our Workers use: one request type, one reply type. */
export interface WorkerScope<Request, Reply> {
  /** Called with each message the parent posts. */
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  /** Posts a reply to the parent, moving the buffers in `transfer`. */
  postMessage(message: Reply, transfer: Transferable[]): void;
}

/**
 * This Worker's global scope, typed for its requests and replies.
 *
 * @example
 * ```ts ignore
 * import { workerScope } from "./worker_scope.ts";
 * const scope = workerScope<number, number>();
 * scope.onmessage = (event) => scope.postMessage(event.data * 2, []);
 * ```
 */
export function workerScope<Request, Reply>(): WorkerScope<Request, Reply> {
  return self as unknown as WorkerScope<Request, Reply>;
}
