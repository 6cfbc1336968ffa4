// The forward runs on wasm; the backward is the float64 oracle until wasm offers runTraining.
import { defineGoldenTrainTests } from "./_train.ts";

defineGoldenTrainTests("wasm");
