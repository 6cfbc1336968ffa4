import { defineGoldenTrainTests } from "./_train.ts";

defineGoldenTrainTests("js");
