/**
 * Reclaims the memory of runners that were never disposed: a runner registers what it holds
 * (wasm memory, GPU buffers) against itself, and once the garbage collector has collected the
 * runner, the registry frees what it held. `dispose()` unregisters, so nothing is freed twice.
 *
 * @module
 */

/** What a {@linkcode Reclaimer} frees: it must not refer back to its owner, or the owner lives on. */
export interface Releasable {
  /** Frees what it holds; called once. */
  dispose(): void;
}

/** The part of `FinalizationRegistry` a {@linkcode Reclaimer} uses (tests pass their own). */
export interface Registry {
  /** Calls the cleanup with `held` some time after `owner` is collected. */
  register(owner: object, held: Releasable, token: object): void;
  /** Forgets the registration made with `token`. */
  unregister(token: object): void;
}

/**
 * Frees the resources of owners that were collected without being disposed.
 *
 * @example A forgotten owner's resource is freed once it is collected
 * ```ts
 * import { Reclaimer } from "./reclaim.ts";
 * const reclaimer = new Reclaimer();
 * reclaimer.watch({}, { dispose: () => console.log("freed after collection") });
 * ```
 */
export class Reclaimer {
  readonly #registry: Registry;

  /**
   * @param makeRegistry Makes the registry from the cleanup callback; the default is a
   * `FinalizationRegistry` (or none where the runtime has none: then nothing is reclaimed).
   */
  constructor(
    makeRegistry: (cleanup: (held: Releasable) => void) => Registry | null = defaultRegistry,
  ) {
    this.#registry = makeRegistry(reclaim) ?? { register: () => {}, unregister: () => {} };
  }

  /** Frees `held` after `owner` is collected, unless {@linkcode Reclaimer.release} comes first. */
  watch(owner: object, held: Releasable): void {
    this.#registry.register(owner, held, owner);
  }

  /** `owner` frees its resources itself (it was disposed): forget it. */
  release(owner: object): void {
    this.#registry.unregister(owner);
  }
}

function defaultRegistry(cleanup: (held: Releasable) => void): Registry | null {
  return typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<Releasable>(cleanup)
    : null;
}

// A cleanup that threw would surface as an uncaught error in a later task, which no caller could
// handle; a resource whose release failed is gone anyway.
function reclaim(held: Releasable): void {
  try {
    held.dispose();
  } catch {
    // Nothing to do: see above.
  }
}
