/** The example endpoint (examples/edge_function.ts) over loopback HTTP. */

import assert from "node:assert/strict";
import { MicroBatcher, randn, StochasticArrayLSTM } from "../mod.ts";
import { closeTo, serveLoopback } from "./_serve.ts";

Deno.test("the edge function answers predictions as JSON, and bad requests with 400", async () => {
  const model = new StochasticArrayLSTM(3, 4, 2, { backend: "wasm", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 5 });
  await using server = serveLoopback(batcher);
  const inputs = [randn([3, 3], { seed: 1 }), randn([1, 3], { seed: 2 })];
  const answers = await Promise.all(inputs.map((x) => server.post(x)));
  for (const [i, x] of inputs.entries()) {
    const alone = await model.forward({ shape: [1, ...x.shape], data: x.data });
    const { status, body } = answers[i];
    assert.equal(status, 200);
    assert.ok(closeTo(body.output.flat(), alone.output.data));
    assert.ok(closeTo(body.hidden, alone.hidden.data));
    assert.ok(closeTo(body.state.flat(), alone.state.data));
    assert.equal(body.output.length, x.shape[0]);
  }
  const bad = await server.post({ x: [[1, 2]] });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error!, /x has the wrong shape: .* = \[\*, 3\], got \[1, 2\]/);
  assert.equal((await server.post({ y: 1 })).status, 400);
  assert.equal((await server.post({ x: [[1, 2, 3], [1]] })).status, 400);
  const get = await fetch(server.url);
  assert.equal(get.status, 405);
  await get.body?.cancel();
  await batcher.close();
  model.dispose();
});
