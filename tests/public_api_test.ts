// The public surface: what mod.ts exports is documented, asserted in examples, and exactly the list
// below; the backend contract and the runners' weight groups stay internal (issues 7 and 17).
import assert from "node:assert/strict";

interface JsDoc {
  readonly tags?: readonly { readonly kind: string; readonly doc?: string }[];
}
interface Member {
  readonly name: string;
  readonly kind?: string;
  readonly accessibility?: string;
  readonly jsDoc?: JsDoc;
}
interface Declaration {
  readonly kind: string;
  readonly jsDoc?: JsDoc;
  readonly def?: {
    readonly constructors?: Member[];
    readonly methods?: Member[];
    readonly hasBody?: boolean;
  };
}
interface DocSymbol {
  readonly name: string;
  readonly declarations: readonly Declaration[];
}

async function publicSymbols(): Promise<DocSymbol[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL("../mod.ts", import.meta.url).pathname],
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const { nodes } = JSON.parse(new TextDecoder().decode(stdout));
  return (Object.values(nodes)[0] as { symbols: DocSymbol[] }).symbols;
}

/** Every function, class, constructor and (non-private) method, with its JSDoc. */
function callables(symbols: readonly DocSymbol[]): [string, JsDoc | undefined][] {
  const found: [string, JsDoc | undefined][] = [];
  for (const { name, declarations } of symbols) {
    // An overloaded function's implementation signature is not callable from outside: its
    // overloads carry the documentation.
    const overloaded = declarations.filter((d) => d.kind === "function" && !d.def?.hasBody)
      .length > 1;
    for (const { kind, jsDoc, def } of declarations) {
      if (kind === "function" && !(overloaded && def?.hasBody)) found.push([`${name}()`, jsDoc]);
      if (kind !== "class") continue;
      found.push([`class ${name}`, jsDoc]);
      for (const c of def?.constructors ?? []) found.push([`new ${name}()`, c.jsDoc]);
      for (const m of def?.methods ?? []) {
        if (m.accessibility === "private" || m.kind === "getter" || m.kind === "setter") continue;
        found.push([`${name}.${m.name}()`, m.jsDoc]);
      }
    }
  }
  return found;
}

Deno.test("every exported callable has an @example that asserts its result", async () => {
  const all = callables(await publicSymbols());
  assert.ok(all.length > 100, `expected the whole API, found ${all.length} callables`);
  const missing = all.filter(([, jsDoc]) =>
    !(jsDoc?.tags ?? []).some((tag) =>
      tag.kind === "example" && /import assert from "node:assert\/strict"/.test(tag.doc ?? "")
    )
  ).map(([name]) => name);
  assert.deepEqual(missing, [], "add an @example that imports node:assert/strict and asserts");
});

/**
 * The public surface, exactly: what users call (models, layers, optimizers, losses, functional ops,
 * loaders, explanations, serving, tensor helpers) and the types of their options and results.
 * Adding an export is a decision: add it here, with the reason in its JSDoc.
 */
const PUBLIC = words(`
  LSTM ArrayLSTM AttentionArrayLSTM StochasticArrayLSTM GRU RNN TorchRecurrent Stacked Bidirectional
  LSTMOptions AttentionArrayLSTMOptions RNNOptions TorchRecurrentOptions TorchCellKind Readout
  ForwardOptions ForwardResult LaneIndices RecurrentState RecurrentInit RecurrentLayer RecurrentResult
  BackendName BackendNames ResolvedBackendName RecurrentActivation
  Tensor tensor zeros oneHot Random RandomSource randn uniform
  Module Parameter Linear LinearOptions Embedding EmbeddingOptions TokenIds
  TrackedTensor LeafTensor detach hasHistory requiresGrad
  add mul sum tanh reshape softmax logSoftmax concat flip split
  nllLoss crossEntropy mseLoss ClassificationLossOptions MseLossOptions Reduction Targets
  Optimizer OptimizerStateDict OptionValue ParameterState SGD SGDOptions Adam AdamW AdamOptions
  clipGradNorm Schedule ScheduleStateDict StepLR StepLROptions CosineAnnealingLR
  CosineAnnealingLROptions
  loadSafetensors readSafetensors readSafetensorsArrays saveSafetensors SafetensorsArray
  SafetensorsContents SafetensorsData SafetensorsDtype SafetensorsError TensorRecord
  saveModel loadModel SavedModel ModelConfig ModelName MODEL_METADATA_KEY
  SaveModelOptions LoadModelOptions ModelFileError ModelMetadata JsonValue LayerName
  readModelMetadata readModelConfig BidirectionalInit
  loadTorch TorchLoadError fromTorch FromTorchOptions TorchMode
  loadKeras LoadKerasOptions KerasLoadError KerasLayerWeights KerasLSTMWeights KerasDenseWeights fromKeras
  KerasBidirectionalWeights KerasEmbeddingWeights KerasGRUWeights KerasLayerCommon KerasLayerInfo
  KerasRecurrentWeights KerasSimpleRNNWeights FromKerasOptions KerasModel
  importKerasLSTM importKerasDense ImportKerasLSTMOptions KerasLSTMTensors
  lrp LrpNetwork LrpOptions LrpResult LrpLevelStates LrpDirectionStates kerasLrpNetwork KerasLrpWeights
  saliency SaliencyHead SaliencyOptions SaliencyResult renderRelevance RenderOptions relevancePerToken
  MicroBatcher MicroBatcherOptions Prediction
  Sequential SequentialForwardOptions LastStep Dropout DropoutOptions
  ReLU Tanh Sigmoid Softmax LogSoftmax relu sigmoid
  fit FitOptions LossFunction batches Batch BatchOptions SequenceData
  accuracy topKAccuracy bitsPerToken Metric MetricTotal
  checkpointBest CheckpointBestOptions earlyStopping EarlyStoppingOptions learningRateScheduler
  MonitorMode MonitorOptions progress ProgressOptions
  Callback EpochLog FitContext FitModel History StepLog
`);

/** Internals that once leaked, or that a convenient re-export would leak again. */
const INTERNAL = words(`
  Backend CellParameters CellSpec CellVariant SequenceRunner VariantKind
  DeviceSnapshot DeviceWeights OptimizerUpdate ResidentOptimizerState ResidentWeights
  DeviceGroup HeldGradient ReleasingRunner ResidentGroup ResidentOwner ResidentParameterState
  RunnerGroup
`);

function words(text: string): string[] {
  return text.trim().split(/\s+/);
}

Deno.test("mod.ts exports exactly the public list", async () => {
  const names = new Set((await publicSymbols()).map(({ name }) => name));
  const added = [...names].filter((name) => !PUBLIC.includes(name)).sort();
  const removed = PUBLIC.filter((name) => !names.has(name));
  assert.deepEqual(
    { added, removed },
    { added: [], removed: [] },
    "mod.ts changed its public API: update PUBLIC in tests/public_api_test.ts if that was meant",
  );
});

Deno.test("the backend contract and the runners' weight groups are not exported", async () => {
  const names = new Set((await publicSymbols()).map(({ name }) => name));
  const leaked = INTERNAL.filter((name) => names.has(name));
  assert.deepEqual(leaked, [], "internal: import these from their src/ module, not from mod.ts");
});
