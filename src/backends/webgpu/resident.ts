/**
 * A cell's weights on one device: uploaded once per device, with the projection pipeline of its
 * variant and the cache of what the call shapes seen so far need (made by `call_buffers.ts`,
 * which imports this file, not the other way round).
 *
 * @module
 */

import { upload } from "./buffers.ts";
import { type GpuContext, pipeline } from "./device.ts";
import { roundUp } from "./layout.ts";
import type { PackedCell } from "./packed_cell.ts";

/** Call shapes whose buffers a resident keeps; older ones are freed. */
const CACHED_SHAPES = 2;

/** What the cache holds for one call shape: at least the buffers to free with it. */
export interface CachedCall {
  /** Every buffer of the call shape. */
  readonly buffers: readonly GPUBuffer[];
}

/** The weights on one device, and what the call shapes seen so far need (`Call`). */
export interface Resident<Call extends CachedCall = CachedCall> {
  /** The device they live on. */
  readonly context: GpuContext;
  /** The weight buffers, to free them. */
  readonly weightBuffers: readonly GPUBuffer[];
  /** `h2h.weight` as an `rgba32float` texture. */
  readonly recurrentWeights: GPUTexture;
  /** `i2h.weight`. */
  readonly inputWeights: GPUBuffer;
  /** `i2h.bias + h2h.bias`. */
  readonly gateBias: GPUBuffer;
  /** `i2a.weight`, or a placeholder. */
  readonly attentionWeights: GPUBuffer;
  /** `i2a.bias`, or a placeholder. */
  readonly attentionBias: GPUBuffer;
  /** The input projection of this variant. */
  readonly projection: GPUComputePipeline;
  /** The cache by call shape, least recently used first (see {@linkcode cachedCall}). */
  readonly calls: Map<string, Call>;
  /** Bytes bound per storage buffer at most. */
  readonly maxBindingBytes: number;
}

/**
 * Uploads `cell` to `context`'s device and compiles its projection pipeline.
 *
 * @throws {RangeError} If the weights exceed the device's limits (the message says which).
 *
 * @example
 * ```ts ignore
 * import { makeResident, releaseResident } from "./resident.ts";
 * const resident = await makeResident(await acquireGpuContext(), packCell(spec), Infinity);
 * releaseResident(resident);
 * ```
 */
export async function makeResident<Call extends CachedCall = CachedCall>(
  context: GpuContext,
  cell: PackedCell,
  bindingLimit: number,
): Promise<Resident<Call>> {
  const { device } = context;
  const maxBindingBytes = Math.min(bindingLimit, device.limits.maxStorageBufferBindingSize);
  const paddedUnits = roundUp(cell.hiddenSize, 4);
  const textureRows = cell.variant.k * paddedUnits;
  if (textureRows > device.limits.maxTextureDimension2D) {
    throw new RangeError(
      `k · H rounded up to a multiple of 4 (${textureRows}) exceeds this WebGPU device's ` +
        `maxTextureDimension2D (${device.limits.maxTextureDimension2D}), which holds the h2h ` +
        "weights; use the wasm backend",
    );
  }
  if (cell.inputWeights.byteLength > maxBindingBytes) {
    throw new RangeError(
      `the packed i2h weights (${cell.inputWeights.byteLength} bytes) exceed this WebGPU ` +
        `device's maxStorageBufferBindingSize (${maxBindingBytes} bytes); use the wasm backend`,
    );
  }
  const { maxPooling, kind } = cell.variant;
  const projection = await pipeline(context, "projection", "project", {
    attention: kind === "attention" ? 1 : 0,
    maxPooling: kind === "attention" && maxPooling ? 1 : 0,
  });
  // Texel (4·unitVec + gate, lane·paddedUnits + inner): the packed rows are the texture's rows.
  const recurrentWeights = device.createTexture({
    label: "h2h weights",
    size: [paddedUnits, textureRows],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
  });
  device.queue.writeTexture(
    { texture: recurrentWeights },
    cell.recurrentWeights,
    { bytesPerRow: paddedUnits * 16 },
    [paddedUnits, textureRows],
  );
  const weights = {
    inputWeights: upload(device, "i2h weights", cell.inputWeights),
    gateBias: upload(device, "gate bias", cell.gateBias),
    attentionWeights: upload(device, "i2a weights", cell.attentionWeights),
    attentionBias: upload(device, "i2a bias", cell.attentionBias),
  };
  return {
    context,
    recurrentWeights,
    ...weights,
    weightBuffers: Object.values(weights),
    projection,
    calls: new Map(),
    maxBindingBytes,
  };
}

/**
 * What `resident` caches for the call shape `key`, made by `make` on its first call and kept for
 * the {@linkcode CACHED_SHAPES} most recently used shapes (older ones are freed).
 *
 * @example
 * ```ts ignore
 * import { cachedCall } from "./resident.ts";
 * const call = await cachedCall(resident, "64x100", () => makeCallBuffers(resident, cell, 64, 100));
 * ```
 */
export async function cachedCall<Call extends CachedCall>(
  resident: Resident<Call>,
  key: string,
  make: () => Promise<Call>,
): Promise<Call> {
  const { calls } = resident;
  const cached = calls.get(key);
  if (cached !== undefined) {
    // Most recently used last, so that eviction frees the oldest shape.
    calls.delete(key);
    calls.set(key, cached);
    return cached;
  }
  const call = await make();
  calls.set(key, call);
  for (const [oldKey, old] of calls) {
    if (calls.size <= CACHED_SHAPES) break;
    calls.delete(oldKey);
    for (const buffer of old.buffers) buffer.destroy();
  }
  return call;
}

/**
 * Frees the weights and every call shape's buffers.
 *
 * @example
 * ```ts ignore
 * import { releaseResident } from "./resident.ts";
 * releaseResident(resident);
 * ```
 */
export function releaseResident(resident: Resident): void {
  for (const buffer of resident.weightBuffers) buffer.destroy();
  resident.recurrentWeights.destroy();
  for (const call of resident.calls.values()) {
    for (const buffer of call.buffers) buffer.destroy();
  }
}
