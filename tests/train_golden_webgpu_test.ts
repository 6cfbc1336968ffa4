// Forward and backward run on the webgpu training kernels (WebGpuTrainer, via runTraining).
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import { defineGoldenTrainTests } from "./_train.ts";

const ignore = await requestWebGpuBackend() === null;
if (ignore) console.log("webgpu training tests skipped: navigator.gpu found no WebGPU adapter");

defineGoldenTrainTests("webgpu", { ignore });
