/**
 * The backend registry: every backend registers itself here once, by name, with its priority, how
 * to tell whether `"auto"` may take it, and how to load it. Everything that lists backends reads
 * this registry: the names a model accepts, `"auto"`, the CLI's `--backend`, `cli bench`, the
 * benchmarks and the tests. The built-in backends register in `builtin.ts`.
 *
 * @module
 */

import type { Backend, ResolvedBackendName } from "../contract/mod.ts";
import { describe } from "../errors.ts";

/** How to find and load one backend. */
export interface BackendRegistration {
  /** `"auto"` takes the available backend of highest priority. */
  readonly priority: number;
  /**
   * Whether `"auto"` may take this backend here. Checked in priority order, only until one says
   * yes, so it may load what it needs to find out.
   */
  available(): boolean | Promise<boolean>;
  /**
   * Loads the backend: when it is named, or when `"auto"` took it. Loading only happens then, so
   * a backend's code is not imported before it is chosen.
   *
   * @throws {Error} Saying why the backend cannot run here and what to do instead.
   */
  load(): Promise<Backend>;
}

const registrations = new Map<ResolvedBackendName, BackendRegistration>();

/**
 * Registers a backend. The name is declared in `BackendNames` (`src/contract/types.ts`) by the
 * same registration, which keeps the name types literal.
 *
 * @throws {TypeError} If the name is `"auto"` or already registered.
 *
 * @example A backend that is never available to `"auto"`
 * ```ts ignore
 * import { registerBackend } from "./registry.ts";
 * import { jsBackend } from "./js/mod.ts";
 * registerBackend("js", { priority: 0, available: () => false, load: () => Promise.resolve(jsBackend) });
 * ```
 */
export function registerBackend(
  name: ResolvedBackendName,
  registration: BackendRegistration,
): void {
  const given: unknown = name;
  if (typeof given !== "string" || given === "" || given === "auto") {
    throw new TypeError(
      `name must be a backend name other than "auto", got ${describe(name)}`,
    );
  }
  if (registrations.has(name)) {
    throw new TypeError(
      `a backend named ${describe(name)} is already registered; register each backend once`,
    );
  }
  if (typeof registration?.priority !== "number" || !Number.isFinite(registration.priority)) {
    throw new TypeError(
      `registration.priority must be a finite number, got ${describe(registration?.priority)}`,
    );
  }
  registrations.set(name, registration);
}

/**
 * The registered backends' names, highest priority first (the order `"auto"` tries them in).
 *
 * @example
 * ```ts
 * import { registeredBackends } from "./registry.ts";
 * import "./builtin.ts";
 * console.log(registeredBackends()); // ["webgpu", "wasm", "js"]
 * ```
 */
export function registeredBackends(): ResolvedBackendName[] {
  return [...registrations.entries()]
    .sort(([, a], [, b]) => b.priority - a.priority)
    .map(([name]) => name);
}

/**
 * The registration of a backend, or `undefined` when none has that name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registrationOf } from "./registry.ts";
 * import "./builtin.ts";
 * assert.equal(registrationOf("js")?.available(), true);
 * ```
 */
export function registrationOf(name: string): BackendRegistration | undefined {
  return registrations.get(name as ResolvedBackendName);
}
