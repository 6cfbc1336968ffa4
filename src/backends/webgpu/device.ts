/**
 * The process-wide WebGPU adapter and device. The adapter is requested once; the device is created
 * on first use and shared by every runner, with its compiled pipelines. When the device is lost
 * (driver reset, `device.destroy()`), the next {@linkcode acquireGpuContext} creates a new one on a
 * fresh adapter, since a lost device's adapter cannot give another.
 *
 * @module
 */

import {
  projectionWgsl,
  recurrentStepWgsl,
  repackWgsl,
  torchStepWgsl,
  trainCellWgsl,
  trainGemmWgsl,
  trainOptimizerWgsl,
  trainReduceWgsl,
} from "../../../kernels/wgsl.generated.ts";

/** A device shared by the runners of this process, with its layouts and pipeline cache. */
export interface GpuContext {
  /** The device. */
  readonly device: GPUDevice;
  /** Why the device was lost, or `null` while it works. */
  lostReason: string | null;
  /** Resolves with the reason once the device is lost; never rejects. */
  readonly lost: Promise<string>;
  /** Layout of `recurrent_step.wgsl`'s bindings. */
  readonly stepLayout: GPUBindGroupLayout;
  /** Layout of `projection.wgsl`'s bindings. */
  readonly projectionLayout: GPUBindGroupLayout;
  /** Compiled pipelines by kernel, entry point and override constants. */
  readonly pipelines: Map<string, Promise<GPUComputePipeline>>;
  /** Compiled shader modules by kernel. */
  readonly modules: Map<string, GPUShaderModule>;
}

/**
 * The kernels and their WGSL sources. The training kernels (`train*`, and `repack`, which reads
 * the trainer's weights) use layouts derived from
 * their code (`"auto"`): they bind their records at fixed offsets instead of dynamic ones.
 */
export const KERNELS = {
  recurrentStep: recurrentStepWgsl,
  projection: projectionWgsl,
  trainCell: trainCellWgsl,
  trainGemm: trainGemmWgsl,
  trainOptimizer: trainOptimizerWgsl,
  trainReduce: trainReduceWgsl,
  torchStep: torchStepWgsl,
  repack: repackWgsl,
} as const;

/** A kernel of {@linkcode KERNELS}. */
export type KernelName = keyof typeof KERNELS;

let firstAdapter: Promise<GPUAdapter | null> | null = null;
let firstAdapterUsed = false;
let current: Promise<GpuContext> | null = null;
let currentContext: GpuContext | null = null;

function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (gpu === undefined) return Promise.resolve(null);
  return gpu.requestAdapter({ powerPreference: "high-performance" }).catch(() => null);
}

/**
 * The adapter this process uses, requested once; `null` without `navigator.gpu` or an adapter.
 *
 * @example
 * ```ts
 * import { requestGpuAdapter } from "./device.ts";
 * const adapter = await requestGpuAdapter();
 * console.log(adapter?.info.description ?? "no WebGPU adapter");
 * ```
 */
export function requestGpuAdapter(): Promise<GPUAdapter | null> {
  firstAdapter ??= requestAdapter();
  return firstAdapter;
}

/** Names of CPU implementations of WebGPU/Vulkan as adapters report them. */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render driver/i;

/** Vulkan's vendor id for Mesa's own (CPU) drivers, `VK_VENDOR_ID_MESA` (0x10005). */
const MESA_VENDOR_ID = 0x10005;

/**
 * Whether an adapter runs on the CPU: a fallback adapter, or a software Vulkan driver (lavapipe,
 * SwiftShader, ...), which some browsers and Deno do not flag as fallback.
 *
 * @example
 * ```ts
 * import { isSoftwareAdapter, requestGpuAdapter } from "./device.ts";
 * const adapter = await requestGpuAdapter();
 * if (adapter !== null) console.log(isSoftwareAdapter(adapter) ? "software" : "hardware");
 * ```
 */
export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info;
  // Older implementations kept the flag on the adapter itself.
  const legacyFlag = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  if (info?.isFallbackAdapter === true || legacyFlag === true) return true;
  if (info === undefined) return false;
  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return SOFTWARE_NAMES.test(names) || Number(info.vendor) === MESA_VENDOR_ID;
}

/**
 * The shared device, created on first use and again after a loss.
 *
 * @throws {Error} If there is no adapter or the device cannot be created.
 *
 * @example
 * ```ts ignore
 * import { acquireGpuContext } from "./device.ts";
 * const { device } = await acquireGpuContext();
 * ```
 */
export function acquireGpuContext(): Promise<GpuContext> {
  if (current === null) {
    const created = createContext();
    current = created;
    created.then((context) => {
      if (current === created) currentContext = context;
    }, () => {
      if (current === created) current = null;
    });
  }
  return current;
}

/**
 * Forgets `context` after its device was lost, so that the next acquire makes a new device.
 *
 * @example
 * ```ts ignore
 * import { acquireGpuContext, forgetGpuContext } from "./device.ts";
 * forgetGpuContext(await acquireGpuContext(), "test");
 * ```
 */
export function forgetGpuContext(context: GpuContext, reason: string): void {
  context.lostReason ??= reason;
  if (currentContext === context) {
    current = null;
    currentContext = null;
  }
}

/**
 * The error of every training call (and of inference on trained weights) after the device that
 * held a model's trained weights was lost: only the device held them, and its gradients and
 * optimizer state. Names the loss's reason (`null`: not known yet) and what to do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lostTrainedWeights } from "./device.ts";
 * const error = lostTrainedWeights("destroyed: Device was destroyed.");
 * assert.match(error.message, /^the WebGPU device was lost \(destroyed: Device was destroyed\.\)/);
 * assert.match(error.message, /loadStateDict/);
 * ```
 */
export function lostTrainedWeights(reason: string | null): Error {
  return new Error(
    `the WebGPU device was lost (${reason ?? "reason not reported"}) after training on it, and ` +
      "the stepped weights with it: load them again (loadStateDict from a checkpoint) into a " +
      "model created again (dispose() this one), or train again; on a failing GPU driver, use " +
      "the wasm or js backend",
  );
}

/**
 * Why `context`'s device was lost, waiting up to `graceMs` for a loss to be reported (a device
 * reports its loss asynchronously, after the calls on it have started failing); `null` if it works.
 *
 * @example
 * ```ts ignore
 * import { acquireGpuContext, lossOf } from "./device.ts";
 * const reason = await lossOf(await acquireGpuContext(), 0);
 * ```
 */
export async function lossOf(context: GpuContext, graceMs = 250): Promise<string | null> {
  if (context.lostReason !== null) return context.lostReason;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const grace = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), graceMs);
  });
  try {
    return await Promise.race([context.lost, grace]);
  } finally {
    clearTimeout(timer);
  }
}

async function createContext(): Promise<GpuContext> {
  // A device's adapter is consumed: after a loss, only a new adapter gives a new device.
  let adapter = await requestGpuAdapter();
  if (firstAdapterUsed) adapter = await requestAdapter();
  firstAdapterUsed = true;
  if (adapter === null) {
    throw new Error(
      "WebGPU has no adapter here (navigator.gpu found none); use the wasm or js backend, or " +
        "install a GPU driver (on Linux without a GPU, Mesa's lavapipe: mesa-vulkan-drivers).",
    );
  }
  // The binding and buffer limits bound how much of a batch runs per chunk, the texture size the
  // hidden size: take all there is.
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxTextureDimension2D: adapter.limits.maxTextureDimension2D,
    },
  });
  const context: GpuContext = {
    device,
    lostReason: null,
    lost: device.lost.then((info) => {
      const reason = `${info.reason ?? "unknown"}${info.message ? `: ${info.message}` : ""}`;
      forgetGpuContext(context, reason);
      return context.lostReason ?? reason;
    }),
    stepLayout: bindGroupLayout(device, "recurrent step", 4, 3, [1]),
    projectionLayout: bindGroupLayout(device, "projection", 5, 2, []),
    pipelines: new Map(),
    modules: new Map(),
  };
  return context;
}

/**
 * A layout of one dynamic uniform, then `reads` read-only and `writes` writable bindings; the
 * read-only ones in `textures` are float textures instead of storage buffers.
 */
function bindGroupLayout(
  device: GPUDevice,
  label: string,
  reads: number,
  writes: number,
  textures: number[],
): GPUBindGroupLayout {
  const entries: GPUBindGroupLayoutEntry[] = [{
    binding: 0,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: "uniform", hasDynamicOffset: true },
  }];
  for (let binding = 1; binding <= reads + writes; binding++) {
    entries.push(
      textures.includes(binding)
        ? {
          binding,
          visibility: GPUShaderStage.COMPUTE,
          texture: { sampleType: "unfilterable-float" },
        }
        : {
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: binding <= reads ? "read-only-storage" : "storage" },
        },
    );
  }
  return device.createBindGroupLayout({ label, entries });
}

/**
 * A compute pipeline of `kernel` specialised by `constants`, compiled once per device.
 *
 * @example
 * ```ts ignore
 * import { acquireGpuContext, pipeline } from "./device.ts";
 * const context = await acquireGpuContext();
 * const project = await pipeline(context, "projection", "project", {
 *   attention: 0,
 *   maxPooling: 0,
 * });
 * ```
 */
export function pipeline(
  context: GpuContext,
  kernel: KernelName,
  entryPoint: string,
  constants: Record<string, number>,
): Promise<GPUComputePipeline> {
  const key = `${kernel}:${entryPoint}:${JSON.stringify(constants)}`;
  let compiled = context.pipelines.get(key);
  if (compiled === undefined) {
    const { device } = context;
    let module = context.modules.get(kernel);
    if (module === undefined) {
      module = device.createShaderModule({ label: kernel, code: KERNELS[kernel] });
      context.modules.set(kernel, module);
    }
    const layout = kernel === "projection"
      ? context.projectionLayout
      : kernel === "recurrentStep"
      ? context.stepLayout
      : null;
    compiled = device.createComputePipelineAsync({
      label: key,
      layout: layout === null
        ? "auto"
        : device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint, constants },
    });
    context.pipelines.set(key, compiled);
    compiled.catch(() => context.pipelines.delete(key));
  }
  return compiled;
}
