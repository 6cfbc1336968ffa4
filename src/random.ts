/**
 * A seeded random number generator (xoshiro128**) built from 32-bit integer operations only, so
 * the same seed gives the same numbers on every platform and JavaScript engine.
 *
 * @module
 */

import { describe } from "./errors.ts";
import { type Tensor, zeros } from "./tensor.ts";

/**
 * A seeded generator of uniform and normal numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Random } from "./random.ts";
 * const random = new Random(42);
 * const u = random.uniform();
 * assert.ok(u >= 0 && u < 1);
 * assert.equal(new Random(42).uniform(), u); // the same seed, the same numbers
 * ```
 */
export class Random {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spareNormal: number | null = null;

  /**
   * Seeds the generator; any safe integer works, including 0 and negatives.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Random } from "./random.ts";
   * assert.notEqual(new Random(0).nextUint32(), new Random(-1).nextUint32());
   * assert.throws(() => new Random(0.5), RangeError);
   * ```
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be a safe integer, got ${describe(seed)}`);
    }
    // splitmix64 over the whole seed (negatives as two's complement) fills the 128-bit state:
    // distinct seeds give distinct streams, and the state is never all zeros.
    let x = BigInt.asUintN(64, BigInt(seed));
    const next = (): bigint => {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = BigInt.asUintN(64, (x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      return z ^ (z >> 31n);
    };
    const [first, second] = [next(), next()];
    this.#s0 = Number(first & 0xffffffffn);
    this.#s1 = Number(first >> 32n);
    this.#s2 = Number(second & 0xffffffffn);
    this.#s3 = Number(second >> 32n);
  }

  /**
   * The next 32 random bits, as an unsigned integer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Random } from "./random.ts";
   * const bits = new Random(1).nextUint32();
   * assert.ok(Number.isInteger(bits) && bits >= 0 && bits < 2 ** 32);
   * ```
   */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /**
   * A uniform number in `[0, 1)` with 53 random bits.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Random } from "./random.ts";
   * const random = new Random(3);
   * const mean = Array.from({ length: 1000 }, () => random.uniform()).reduce((a, b) => a + b) / 1000;
   * assert.ok(Math.abs(mean - 0.5) < 0.05);
   * ```
   */
  uniform(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /**
   * A standard normal number (Box–Muller; the second value of each pair is kept).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Random } from "./random.ts";
   * const random = new Random(3);
   * const xs = Array.from({ length: 2000 }, () => random.normal());
   * const mean = xs.reduce((a, b) => a + b) / xs.length;
   * const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
   * assert.ok(Math.abs(mean) < 0.1 && Math.abs(variance - 1) < 0.1);
   * ```
   */
  normal(): number {
    if (this.#spareNormal !== null) {
      const spare = this.#spareNormal;
      this.#spareNormal = null;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.#spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

function rotl(x: number, bits: number): number {
  return (x << bits) | (x >>> (32 - bits));
}

/** Where random numbers come from: a seed, or a generator to continue. */
export type RandomSource = number | Random;

function sourceOf(seed: RandomSource | undefined): Random {
  if (seed instanceof Random) return seed;
  return new Random(seed ?? crypto.getRandomValues(new Uint32Array(1))[0]);
}

/**
 * A tensor of uniform numbers in `[low, high)`.
 *
 * @example Weights like PyTorch's `nn.Linear(10, 4)` initialises them
 * ```ts
 * import assert from "node:assert/strict";
 * import { uniform } from "./random.ts";
 * const bound = 1 / Math.sqrt(10);
 * const weight = uniform([4, 10], { low: -bound, high: bound, seed: 42 });
 * assert.deepEqual(weight.shape, [4, 10]);
 * assert.ok(weight.data.every((v) => v >= -bound && v < bound));
 * ```
 */
export function uniform(
  shape: readonly number[],
  options: { low?: number; high?: number; seed?: RandomSource } = {},
): Tensor {
  const { low = 0, high = 1 } = options;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
    throw new RangeError(
      `uniform needs finite low <= high, got low ${describe(low)}, high ${describe(high)}`,
    );
  }
  const result = zeros(shape);
  const random = sourceOf(options.seed);
  for (let i = 0; i < result.data.length; i++) {
    result.data[i] = low + (high - low) * random.uniform();
  }
  return result;
}

/**
 * A tensor of standard normal numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randn } from "./random.ts";
 * const x = randn([2, 5, 3], { seed: 7 });
 * assert.deepEqual(x.shape, [2, 5, 3]);
 * assert.deepEqual(randn([2, 5, 3], { seed: 7 }), x); // seeded: reproducible
 * ```
 */
export function randn(shape: readonly number[], options: { seed?: RandomSource } = {}): Tensor {
  const result = zeros(shape);
  const random = sourceOf(options.seed);
  for (let i = 0; i < result.data.length; i++) result.data[i] = random.normal();
  return result;
}
