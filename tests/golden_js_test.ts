import { defineGoldenForwardTests } from "./_golden.ts";

defineGoldenForwardTests("js");
