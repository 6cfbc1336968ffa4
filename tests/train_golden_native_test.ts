// Forward, backward and the optimizer step run on the native training kernels (NativeTrainer,
// via runTraining and the resident weights); needs --allow-ffi and the library.
import { isAvailable } from "./_backends.ts";
import { defineGoldenTrainTests } from "./_train.ts";

if (!isAvailable("native")) console.log("native training tests skipped: no --allow-ffi or library");

defineGoldenTrainTests("native");
