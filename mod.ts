/**
 * ArrayLSTM recurrent networks for Deno: `LSTM`, `ArrayLSTM`, `AttentionArrayLSTM` and
 * `StochasticArrayLSTM`, a faithful port of the PyTorch package *ArrayLSTM* (van Ede, the LSTM of
 * DeepCASE) after Rocki's *Recurrent Memory Array Structures*. Models run on WebGPU, on a SIMD
 * WebAssembly module, or in plain TypeScript, with the same numbers as the reference.
 *
 * @example Run the documentation's model on one-hot tokens
 * ```ts
 * import { oneHot, StochasticArrayLSTM } from "./mod.ts";
 *
 * const lstm = new StochasticArrayLSTM(10, 128, 4, { seed: 42 });
 * const x = oneHot([[1, 4, 2, 8], [5, 7, 1, 0]], 10); // (batch, seq_len, input_size)
 * const { output, hidden, state } = await lstm.forward(x); // (2,4,128), (1,2,128), (4,2,128)
 * const next = await lstm.forward(x, { hidden, state }); // continue from a state
 * lstm.dispose();
 * ```
 *
 * @module
 */

// Models: the ArrayLSTM family, torch's GRU and RNN, and their compositions.
export {
  type ForwardOptions,
  type ForwardResult,
  type LaneIndices,
  LSTM,
  type LSTMOptions,
  type Readout,
  type RecurrentState,
} from "./src/models/lstm.ts";
export { ArrayLSTM } from "./src/models/array_lstm.ts";
export {
  AttentionArrayLSTM,
  type AttentionArrayLSTMOptions,
} from "./src/models/attention_array_lstm.ts";
export { StochasticArrayLSTM } from "./src/models/stochastic_array_lstm.ts";
export { TorchRecurrent, type TorchRecurrentOptions } from "./src/models/torch_recurrent.ts";
export type { TorchCellKind } from "./src/reference/gru_rnn.ts";
export { GRU } from "./src/models/gru.ts";
export { RNN, type RNNOptions } from "./src/models/rnn.ts";
export { Stacked } from "./src/models/stacked.ts";
export { Bidirectional, type BidirectionalInit } from "./src/models/bidirectional.ts";
export { Sequential, type SequentialForwardOptions } from "./src/models/sequential.ts";
export { LastStep } from "./src/models/last_step.ts";
export type { RecurrentInit, RecurrentLayer, RecurrentResult } from "./src/models/recurrent.ts";
export type {
  BackendName,
  BackendNames,
  RecurrentActivation,
  ResolvedBackendName,
} from "./src/contract/mod.ts";

// Tensors and seeded random numbers.
export { oneHot, type Tensor, tensor, zeros } from "./src/tensor.ts";
export { randn, Random, type RandomSource, uniform } from "./src/random.ts";

// Training: layers, parameters and the tape, functional ops, losses, optimizers, schedules.
export { Module } from "./src/nn/module.ts";
export { Parameter } from "./src/nn/parameter.ts";
export {
  detach,
  hasHistory,
  type LeafTensor,
  requiresGrad,
  type TrackedTensor,
} from "./src/nn/tape.ts";
export { Linear, type LinearOptions } from "./src/nn/linear.ts";
export { Embedding, type EmbeddingOptions, type TokenIds } from "./src/nn/embedding.ts";
export { Dropout, type DropoutOptions } from "./src/nn/dropout.ts";
export { LogSoftmax, ReLU, Sigmoid, Softmax, Tanh } from "./src/nn/activations.ts";
export {
  add,
  logSoftmax,
  mul,
  relu,
  reshape,
  sigmoid,
  softmax,
  sum,
  tanh,
} from "./src/nn/functional.ts";
export { concat, flip, split } from "./src/nn/layout.ts";
export {
  type ClassificationLossOptions,
  crossEntropy,
  mseLoss,
  type MseLossOptions,
  nllLoss,
  type Reduction,
  type Targets,
} from "./src/nn/loss.ts";
export { Optimizer } from "./src/optim/optimizer.ts";
export type { OptimizerStateDict, OptionValue, ParameterState } from "./src/optim/state.ts";
export { SGD, type SGDOptions } from "./src/optim/sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./src/optim/adam.ts";
export { clipGradNorm } from "./src/optim/clip.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLROptions,
  Schedule,
  type ScheduleStateDict,
  StepLR,
  type StepLROptions,
} from "./src/optim/schedule.ts";

// Fitting: the training loop, batches of sequences, metrics and callbacks.
export { fit, type FitOptions, type LossFunction } from "./src/train/fit.ts";
export { type Batch, batches, type BatchOptions, type SequenceData } from "./src/train/batches.ts";
export {
  accuracy,
  bitsPerToken,
  type Metric,
  type MetricTotal,
  topKAccuracy,
} from "./src/train/metrics.ts";
export {
  checkpointBest,
  type CheckpointBestOptions,
  earlyStopping,
  type EarlyStoppingOptions,
  learningRateScheduler,
  type MonitorMode,
  type MonitorOptions,
  progress,
  type ProgressOptions,
} from "./src/train/callbacks.ts";
export type {
  Callback,
  EpochLog,
  FitContext,
  FitModel,
  History,
  StepLog,
} from "./src/train/logs.ts";

// Files: safetensors, whole models, torch and Keras weights.
export {
  loadSafetensors,
  readSafetensors,
  readSafetensorsArrays,
  type SafetensorsArray,
  type SafetensorsContents,
  type SafetensorsData,
  type SafetensorsDtype,
  SafetensorsError,
  saveSafetensors,
  type TensorRecord,
} from "./src/safetensors.ts";
export {
  type JsonValue,
  loadModel,
  type LoadModelOptions,
  MODEL_METADATA_KEY,
  type ModelConfig,
  ModelFileError,
  type ModelMetadata,
  readModelConfig,
  readModelMetadata,
  type SavedModel,
  saveModel,
  type SaveModelOptions,
} from "./src/model_file.ts";
export type { LayerName } from "./src/models/registry.ts";
export type { ModelName } from "./src/variants.ts";
export { loadTorch, TorchLoadError } from "./src/interop/torch.ts";
export { fromTorch, type FromTorchOptions, type TorchMode } from "./src/interop/from_torch.ts";
export {
  type KerasBidirectionalWeights,
  type KerasDenseWeights,
  type KerasEmbeddingWeights,
  type KerasGRUWeights,
  type KerasLayerCommon,
  type KerasLayerInfo,
  type KerasLayerWeights,
  KerasLoadError,
  type KerasLSTMWeights,
  type KerasRecurrentWeights,
  type KerasSimpleRNNWeights,
  loadKeras,
  type LoadKerasOptions,
} from "./src/interop/keras.ts";
export {
  importKerasDense,
  importKerasLSTM,
  type ImportKerasLSTMOptions,
  type KerasLSTMTensors,
} from "./src/interop/keras_import.ts";
export { fromKeras, type FromKerasOptions, type KerasModel } from "./src/interop/keras_model.ts";

// Explanations: LRP, gradient saliency, heatmaps.
export {
  lrp,
  type LrpDirectionStates,
  type LrpLevelStates,
  type LrpNetwork,
  type LrpOptions,
  type LrpResult,
} from "./src/explain/lrp.ts";
export { kerasLrpNetwork, type KerasLrpWeights } from "./src/explain/keras_network.ts";
export {
  saliency,
  type SaliencyHead,
  type SaliencyOptions,
  type SaliencyResult,
} from "./src/explain/saliency.ts";
export { type RenderOptions, renderRelevance } from "./src/explain/render.ts";
export { relevancePerToken } from "./src/explain/tokens.ts";

// Serving: coalescing concurrent requests into batches.
export { MicroBatcher, type MicroBatcherOptions, type Prediction } from "./src/serve/batcher.ts";
