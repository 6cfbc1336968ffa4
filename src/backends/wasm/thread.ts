/**
 * The main thread's handle on one worker of the WASM backend (`worker.ts`): sends it the cell
 * once and batch slices to run, and matches the answers to the calls.
 *
 * @module
 */

import type {
  CellSpec,
  EpsilonRule,
  LayerRelevance,
  SequenceInput,
  SequenceOutput,
} from "../../contract/mod.ts";
import type { WasmFlavor } from "./bindings.ts";
import type { SliceGradients, SliceInputGradients } from "./train_kernel.ts";
import {
  transferable,
  type WorkerReply,
  type WorkerRequest,
  type WorkerResult,
} from "./protocol.ts";
import { ScratchBuffers } from "./scratch.ts";

/** The worker's module. A Worker loads it, and each module it imports, as a dynamic import. */
const WORKER_URL = new URL("./worker.ts", import.meta.url);

/**
 * Whether a Worker can start without a permission prompt or error. Its modules are loaded as
 * dynamic imports, which need read access for local files (all of it: they live in several
 * folders) and import access for a remote host; `deno run` without flags has only the default
 * import hosts (jsr.io, deno.land, …). Checked with `Deno.permissions.querySync`, so it never
 * prompts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workersPermitted } from "./thread.ts";
 * // This package's modules are local files here: Workers need read access.
 * assert.equal(workersPermitted(), Deno.permissions.querySync({ name: "read" }).state === "granted");
 * ```
 */
export function workersPermitted(): boolean {
  if (typeof Deno === "undefined") return true;
  const { protocol, hostname, port } = WORKER_URL;
  const descriptor: Deno.PermissionDescriptor = protocol === "file:"
    ? { name: "read" }
    : { name: "import", host: `${hostname}:${port || (protocol === "https:" ? 443 : 80)}` };
  return Deno.permissions?.querySync?.(descriptor).state === "granted";
}

interface Pending {
  resolve(result: WorkerResult): void;
  reject(error: Error): void;
}

/**
 * One worker with its own wasm instance and packed weights.
 *
 * @example
 * ```ts ignore
 * import { WasmThread } from "./thread.ts";
 * const thread = new WasmThread(spec, "relaxed"); // spec: a CellSpec
 * const output = await thread.run(input); // input: a SequenceInput
 * thread.terminate();
 * ```
 */
export class WasmThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #compiled: Promise<WorkerResult>;
  #nextId = 0;
  #failure: Error | null = null;
  readonly #scratch = new ScratchBuffers();

  /** Starts the worker and has it pack `spec` (a structured-clone copy of it) into `flavor`. */
  constructor(spec: CellSpec, flavor: WasmFlavor) {
    this.#worker = new Worker(WORKER_URL, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<WorkerReply>) => this.#answer(event.data);
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fail(new Error(`wasm worker failed: ${event.message}`));
    };
    this.#compiled = this.#compile(spec, flavor);
  }

  /** Whether the worker still answers (not terminated, never failed): it may be reused. */
  get healthy(): boolean {
    return this.#failure === null;
  }

  /**
   * Has the worker pack another cell instead of its current one (a pooled worker taken by a new
   * runner): much cheaper than starting a worker. Call it with no call running.
   */
  recompile(spec: CellSpec, flavor: WasmFlavor): void {
    this.#compiled = this.#compile(spec, flavor);
  }

  #compile(spec: CellSpec, flavor: WasmFlavor): Promise<WorkerResult> {
    const compiled = this.#request({ type: "compile", id: this.#nextId++, spec, flavor }, []);
    // A failed compile is reported by the next `run`; don't let it go unhandled meanwhile.
    compiled.catch(() => {});
    return compiled;
  }

  /** Runs `input` in the worker; its arrays are transferred, so pass arrays nobody else holds. */
  async run(input: SequenceInput): Promise<SequenceOutput> {
    await this.#compiled;
    const transfer = transferable([input.x, input.hidden, input.state]);
    const result = await this.#request({ type: "run", id: this.#nextId++, input }, transfer);
    return result as SequenceOutput;
  }

  /** Settles once the worker has packed its cell: it runs, and its module loaded. */
  async ready(): Promise<void> {
    await this.#compiled;
  }

  /**
   * Runs part `part` of `parts` of `input`'s hidden units, trading `h_t` through `buffer` with
   * the other parts (`shared_units.ts`). Posted at once, so the caller may block in its own part
   * right after this call; call it after {@linkcode WasmThread.ready}, or a worker that never
   * started leaves that part waiting. The input is copied.
   */
  runSharing(
    input: SequenceInput,
    buffer: SharedArrayBuffer,
    part: number,
    parts: number,
  ): Promise<SequenceOutput> {
    const request = { type: "share", id: this.#nextId++, input, buffer, part, parts } as const;
    return this.#request(request, []) as Promise<SequenceOutput>;
  }

  /**
   * The recording forward of `input`, tagged `step` (keeping what the relevance pass needs with
   * `candidates`). The input is copied, not transferred: the caller keeps it for the backward.
   * The results are views of one of this thread's spare buffers: copy them out, then hand it
   * back with {@linkcode WasmThread.recycle}.
   */
  async forward(input: SequenceInput, step: number, candidates = false): Promise<SequenceOutput> {
    await this.#compiled;
    const scratch = this.#scratch.take();
    const request = {
      type: "forward",
      id: this.#nextId++,
      step,
      input,
      candidates,
      scratch,
    } as const;
    const result = await this.#request(request, scratch === null ? [] : [scratch]);
    return result as SequenceOutput;
  }

  /**
   * The backward of step `step`, whose forward ran on `input` (`null`: the worker's last forward
   * was this step's, so it needs no input); `grads` are transferred. Pass them as views of
   * {@linkcode WasmThread.spare}'s buffer (or of their own): the results come back in it, to be
   * copied out and handed back with {@linkcode WasmThread.recycle}.
   */
  async backward(
    input: SequenceInput | null,
    step: number,
    grads: SliceGradients,
  ): Promise<SliceInputGradients> {
    await this.#compiled;
    const transfer = transferable([grads.output, grads.hidden, grads.state]);
    const scratch = grads.output.buffer instanceof ArrayBuffer ? grads.output.buffer : null;
    const request = { type: "backward", id: this.#nextId++, step, input, grads, scratch } as const;
    return await this.#request(request, transfer) as SliceInputGradients;
  }

  /** A spare buffer for the slices of a call to this worker, or `null` (see `scratch.ts`). */
  spare(): ArrayBuffer | null {
    return this.#scratch.take();
  }

  /** Takes back the buffer of a call's results once they have been copied out. */
  recycle(buffer: ArrayBufferLike): void {
    this.#scratch.give(buffer);
  }

  /**
   * The relevance pass of step `step`, whose forward ran on `input`; `outputRelevance` is
   * transferred.
   */
  async relevance(
    input: SequenceInput,
    step: number,
    outputRelevance: Float32Array,
    rule: EpsilonRule,
  ): Promise<LayerRelevance> {
    await this.#compiled;
    const request = {
      type: "relevance",
      id: this.#nextId++,
      step,
      input,
      outputRelevance,
      rule: { eps: rule.eps, biasFactor: rule.biasFactor },
    } as const;
    return await this.#request(request, transferable([outputRelevance])) as LayerRelevance;
  }

  /**
   * Replaces the worker's weights (flat, `parameterSizes` order) after an optimizer step taken in
   * the calling thread. Posted at once, so every call made after it runs on the new weights.
   * `params` is transferred: pass an array nobody else holds.
   */
  setWeights(params: Float32Array): Promise<WorkerResult> {
    return this.#request({ type: "weights", id: this.#nextId++, params }, transferable([params]));
  }

  /** Stops the worker at once; calls still waiting reject. */
  terminate(): void {
    this.#worker.terminate();
    this.#fail(new Error("this wasm runner was disposed while a call was running"));
  }

  #request(request: WorkerRequest, transfer: Transferable[]): Promise<WorkerResult> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.set(request.id, { resolve, reject });
      this.#worker.postMessage(request, transfer);
    });
  }

  #answer(reply: WorkerReply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (reply.ok) {
      pending.resolve(reply.result);
    } else {
      const error = reply.name === "RangeError"
        ? new RangeError(reply.message)
        : reply.name === "TypeError"
        ? new TypeError(reply.message)
        : new Error(reply.message);
      pending.reject(error);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

/**
 * Workers that runners of one backend hand back when they are disposed or idle, for the next
 * runner to take: training replaces a model's runner after every optimizer step, and re-packing
 * weights in a running worker costs a message, where starting one costs about 100 ms. Workers left
 * in the pool stop after `idleMs` (`POOLED_WORKER_MS`), so that a program can exit: an idle web
 * Worker keeps a Deno process alive, and cannot be unref'd.
 *
 * @example
 * ```ts ignore
 * import { WorkerPool } from "./thread.ts";
 * const pool = new WorkerPool(100);
 * const [worker] = pool.take(1, spec, "relaxed"); // spec: a CellSpec
 * pool.give([worker]);
 * ```
 */
export class WorkerPool {
  readonly #idleMs: number;
  #idle: WasmThread[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** @param idleMs How long a pooled worker waits for a runner before it stops. */
  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  /** `count` workers with `spec` packed: pooled ones first, new ones for the rest. */
  take(count: number, spec: CellSpec, flavor: WasmFlavor): WasmThread[] {
    const taken = this.#idle.splice(0, count);
    for (const worker of taken) worker.recompile(spec, flavor);
    while (taken.length < count) taken.push(new WasmThread(spec, flavor));
    if (this.#idle.length === 0) this.#clearTimer();
    return taken;
  }

  /** Takes back workers that have no call running; failed ones are stopped instead. */
  give(workers: readonly WasmThread[]): void {
    for (const worker of workers) {
      if (worker.healthy) this.#idle.push(worker);
      else worker.terminate();
    }
    this.#clearTimer();
    if (this.#idle.length === 0) return;
    const timer = setTimeout(() => {
      this.#timer = null;
      for (const worker of this.#idle) worker.terminate();
      this.#idle = [];
    }, this.#idleMs);
    // The timer itself must not keep the process alive: it only exists to let it exit.
    if (typeof Deno !== "undefined") Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
