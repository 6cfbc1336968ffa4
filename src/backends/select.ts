/**
 * Backend selection, from the registry (`registry.ts`, built-ins in `builtin.ts`): `"auto"` takes
 * the available backend of highest priority (WebGPU on a hardware adapter, else WASM); an explicit
 * choice that is unavailable is an error, never a silent fallback. The environment variable
 * `ARRAYLSTM_BACKEND` overrides `"auto"` (for CI and benchmarks) when env access is granted.
 *
 * @module
 */

import "./builtin.ts";
import type { Backend, BackendName, ResolvedBackendName } from "../contract/mod.ts";
import { describe } from "../errors.ts";
import { registeredBackends, registrationOf } from "./registry.ts";

/**
 * Every name `backend` accepts: `"auto"`, then the registered backends, highest priority first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backendNames } from "./select.ts";
 * assert.deepEqual(backendNames(), ["auto", "webgpu", "native", "wasm", "js"]);
 * ```
 */
export function backendNames(): BackendName[] {
  return ["auto", ...registeredBackends()];
}

/**
 * The registered backends, lowest priority first: the order tables and benchmarks list them in
 * (the plainest first, as the baseline).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concreteBackendNames } from "./select.ts";
 * assert.deepEqual(concreteBackendNames(), ["js", "wasm", "native", "webgpu"]);
 * ```
 */
export function concreteBackendNames(): ResolvedBackendName[] {
  return registeredBackends().reverse();
}

/**
 * Checks a backend name and returns it.
 *
 * @example
 * ```ts
 * import { checkBackendName } from "./select.ts";
 * const name = checkBackendName("backend", "wasm");
 * ```
 */
export function checkBackendName(argument: string, value: unknown): BackendName {
  const names = backendNames();
  if (!names.includes(value as BackendName)) {
    throw new TypeError(
      `${argument} must be one of ${names.map(describe).join(", ")}, got ${describe(value)}`,
    );
  }
  return value as BackendName;
}

function environmentOverride(): BackendName | null {
  const variable = "ARRAYLSTM_BACKEND";
  const permission = Deno.permissions?.querySync?.({ name: "env", variable });
  if (permission?.state !== "granted") return null;
  const value = Deno.env.get(variable);
  if (value === undefined || value === "" || value === "auto") return null;
  return checkBackendName(`the environment variable ${variable}`, value);
}

/**
 * Resolves a backend name to a backend, loading a backend's code only when it is chosen.
 *
 * @throws {Error} If an explicitly named backend is not available here.
 *
 * @example
 * ```ts
 * import { selectBackend } from "./select.ts";
 * const backend = await selectBackend("js");
 * ```
 */
export async function selectBackend(name: BackendName): Promise<Backend> {
  const requested = name === "auto" ? environmentOverride() ?? "auto" : name;
  if (requested !== "auto") {
    const registration = registrationOf(checkBackendName("name", requested));
    return await registration!.load();
  }
  for (const candidate of registeredBackends()) {
    const registration = registrationOf(candidate)!;
    if (await registration.available()) return await registration.load();
  }
  throw new Error(
    `no backend is available here (registered: ${registeredBackends().join(", ")}); ` +
      "name one explicitly to see why it cannot run",
  );
}
