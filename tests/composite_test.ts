import assert from "node:assert/strict";
import {
  Bidirectional,
  concat,
  flip,
  LSTM,
  mul,
  randn,
  requiresGrad,
  split,
  Stacked,
  StochasticArrayLSTM,
  sum,
  type Tensor,
} from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

const lstm = (input: number, hidden: number, seed: number) =>
  new LSTM(input, hidden, { backend: "js", seed });

Deno.test("concat, split and flip pass gradients back in place", async () => {
  const a = requiresGrad(randn([2, 3, 2], { seed: 1 }));
  const b = requiresGrad(randn([2, 1, 2], { seed: 2 }));
  const joined = concat([a, b], 1);
  const [left, right] = split(flip(joined, 1), [1, 3], 1);
  const weights = randn(right.shape, { seed: 3 });
  await sum(mul(right, weights)).backward();
  // flip then split: `right` holds joined[:, 2::-1], that is a[:, 2], a[:, 1], a[:, 0]
  assert.deepEqual(left.shape, [2, 1, 2]);
  for (let batch = 0; batch < 2; batch++) {
    for (let t = 0; t < 3; t++) {
      for (let f = 0; f < 2; f++) {
        assert.equal(
          a.grad!.data[(batch * 3 + t) * 2 + f],
          weights.data[(batch * 3 + 2 - t) * 2 + f],
        );
      }
    }
  }
  assert.deepEqual([...b.grad!.data], [0, 0, 0, 0]);
});

Deno.test("Stacked runs layers in order and joins states in torch's layout", async () => {
  const first = lstm(3, 4, 1), second = lstm(4, 4, 2);
  const x = randn([2, 5, 3], { seed: 3 });
  const result = await new Stacked([first, second]).forward(x);
  const one = await first.forward(x);
  const two = await second.forward(one.output);
  assert.deepEqual(result.output.data, two.output.data);
  assert.deepEqual([...result.hidden.data], [...one.hidden.data, ...two.hidden.data]);
  assert.deepEqual([...result.state!.data], [...one.state.data, ...two.state.data]);
  assert.equal(result.layers?.length, 2);
});

Deno.test("Stacked splits an initial state across layers, ArrayLSTM lanes included", async () => {
  const first = new StochasticArrayLSTM(3, 4, 2, { backend: "js", seed: 1 });
  const second = lstm(4, 4, 2);
  const x = randn([2, 5, 3], { seed: 3 });
  const hidden = randn([2, 2, 4], { seed: 4 }), state = randn([3, 2, 4], { seed: 5 });
  const result = await new Stacked([first, second]).forward(x, { hidden, state });
  const [h0, h1] = split(hidden, [1, 1], 0), [c0, c1] = split(state, [2, 1], 0);
  const one = await first.forward(x, { hidden: h0, state: c0 });
  const two = await second.forward(one.output, { hidden: h1, state: c1 });
  assert.deepEqual(result.output.data, two.output.data);
  assert.deepEqual(result.state!.shape, [3, 2, 4]);
});

Deno.test("Stacked of different widths: output works, hidden says to read layers", async () => {
  const stack = new Stacked([lstm(3, 5, 1), lstm(5, 2, 2)]);
  const result = await stack.forward(randn([1, 4, 3], { seed: 1 }));
  assert.deepEqual(result.output.shape, [1, 4, 2]);
  assert.throws(() => result.hidden, /hiddenSize 5, 2: read each layer's own .* result\.layers/);
  assert.deepEqual(result.layers?.[0].hidden.shape, [1, 1, 5]);
  assert.throws(
    () => new Stacked([lstm(3, 5, 1), lstm(4, 2, 2)]),
    /layers\[1\]\.inputSize must be/,
  );
  assert.throws(() => new Stacked([]), /non-empty array/);
  assert.throws(() => new Stacked([{} as LSTM]), /layers\[0\] must be a recurrent layer/);
});

Deno.test("Bidirectional reads the sequence backward and stores outputs in place", async () => {
  const ahead = lstm(3, 4, 1), back = lstm(3, 4, 2);
  const x = randn([2, 5, 3], { seed: 3 });
  const result = await new Bidirectional(ahead, back).forward(x);
  const a = await ahead.forward(x);
  const b = await back.forward(flip(x, 1));
  assert.deepEqual(result.output.data, concat([a.output, flip(b.output, 1)], 2).data);
  assert.deepEqual([...result.hidden.data], [...a.hidden.data, ...b.hidden.data]);
});

Deno.test("gradients flow through Bidirectional and Stacked to parameters, input and state", async () => {
  const parts = () => [lstm(3, 4, 1), lstm(3, 4, 2), lstm(8, 4, 3), lstm(8, 4, 4)] as const;
  const [a, b, c, d] = parts();
  const net = new Stacked([new Bidirectional(a, b), new Bidirectional(c, d)]).train();
  const x = requiresGrad(randn([2, 4, 3], { seed: 5 }));
  const h0 = requiresGrad(randn([4, 2, 4], { seed: 6 }));
  const c0 = requiresGrad(randn([4, 2, 4], { seed: 7 }));
  const weights = randn([2, 4, 8], { seed: 8 });
  const result = await net.forward(x, { hidden: h0, state: c0 });
  await sum(mul(result.output, weights)).backward();
  assert.deepEqual(Object.keys(net.stateDict()).slice(0, 2), [
    "0.forward.i2h.weight",
    "0.forward.i2h.bias",
  ]);
  // The same gradients, composed by hand from the layers' own recorded forwards.
  const [e, f, g, h] = parts().map((layer) => layer.train());
  const x2 = requiresGrad(x), h2 = requiresGrad(h0), c2 = requiresGrad(c0);
  const hs = split(h2, [1, 1, 1, 1], 0), cs = split(c2, [1, 1, 1, 1], 0);
  const bi = async (p: LSTM, q: LSTM, input: Tensor, i: number) => {
    const ahead = await p.forward(input, { hidden: hs[i], state: cs[i] });
    const back = await q.forward(flip(input, 1), { hidden: hs[i + 1], state: cs[i + 1] });
    return concat([ahead.output, flip(back.output, 1)], 2);
  };
  const out = await bi(g, h, await bi(e, f, x2, 0), 2);
  await sum(mul(out, weights)).backward();
  const expected = [e, f, g, h].flatMap((layer) => layer.parameters());
  net.parameters().forEach((p, i) =>
    assertClose(p.grad!.data, expected[i].grad!.data, TOLERANCE.reordered, p.name)
  );
  assertClose(x.grad!.data, x2.grad!.data, TOLERANCE.reordered, "x.grad");
  assertClose(h0.grad!.data, h2.grad!.data, TOLERANCE.reordered, "h0.grad");
  assertClose(c0.grad!.data, c2.grad!.data, TOLERANCE.reordered, "c0.grad");
});
