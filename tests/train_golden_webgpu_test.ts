// Forward and backward run on the webgpu training kernels (WebGpuTrainer, via runTraining).
import { hasWebGpu } from "./_backends.ts";
import { defineGoldenTrainTests } from "./_train.ts";

if (!hasWebGpu) console.log("webgpu training tests skipped: navigator.gpu found no WebGPU adapter");

defineGoldenTrainTests("webgpu");
