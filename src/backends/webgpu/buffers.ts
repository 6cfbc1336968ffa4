/**
 * Creating storage buffers: every buffer is at least a small placeholder, so that variants
 * without attention can bind something in the attention slots.
 *
 * @module
 */

import { roundUp } from "./layout.ts";

/** Storage buffers bound in place of attention buffers by the other variants. */
const PLACEHOLDER_BYTES = 64;

/**
 * An uninitialised buffer of at least `bytes` bytes.
 *
 * @example
 * ```ts ignore
 * import { createBuffer } from "./buffers.ts";
 * const output = createBuffer(device, "output", 1024, GPUBufferUsage.STORAGE);
 * ```
 */
export function createBuffer(
  device: GPUDevice,
  label: string,
  bytes: number,
  usage: number,
): GPUBuffer {
  return device.createBuffer({
    label,
    size: roundUp(Math.max(bytes, PLACEHOLDER_BYTES), 4),
    usage,
  });
}

/**
 * A storage buffer holding `data` (a placeholder when `data` is `null`).
 *
 * @example
 * ```ts ignore
 * import { upload } from "./buffers.ts";
 * const bias = upload(device, "gate bias", new Float32Array(16));
 * ```
 */
export function upload(device: GPUDevice, label: string, data: Float32Array | null): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: roundUp(Math.max(data?.byteLength ?? 0, PLACEHOLDER_BYTES), 4),
    usage: GPUBufferUsage.STORAGE,
    mappedAtCreation: true,
  });
  if (data !== null) new Float32Array(buffer.getMappedRange()).set(data);
  buffer.unmap();
  return buffer;
}
