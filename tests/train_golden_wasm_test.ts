// Forward and backward run on the wasm training kernels (Trainer, via runTraining).
import { defineGoldenTrainTests } from "./_train.ts";

defineGoldenTrainTests("wasm");
