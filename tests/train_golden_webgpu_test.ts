// The forward runs on webgpu; the backward is the float64 oracle until webgpu offers runTraining.
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import { defineGoldenTrainTests } from "./_train.ts";

const ignore = await requestWebGpuBackend() === null;
if (ignore) console.log("webgpu training tests skipped: navigator.gpu found no WebGPU adapter");

defineGoldenTrainTests("webgpu", { ignore });
