"""The Keras models of generate.py, written with Keras 3 (`keras`) or Keras 2 (`tf_keras`).

Run by generate.py as `python keras_models.py keras3|keras2 OUTDIR`: each model is saved in every
format of that Keras (Keras 3: .keras, .weights.h5, model.save(".h5"); Keras 2: model.save(".h5"),
save_weights(".h5")), and its input and `model.predict` output go to OUTDIR/<flavour>_expected.npz.
"""

import json
import os
import sys

import numpy as np

FLAVOUR, OUT = sys.argv[1], sys.argv[2]
# generate.py --only: every model is built and run (the same random weights), these are written.
ONLY = set(filter(None, os.environ.get("GENERATE_ONLY", "").split(",")))
if FLAVOUR == "keras3":
    import keras
    from keras import layers as L
else:
    import tf_keras as keras
    from tf_keras import layers as L

T, I = 5, 3  # steps, features
VOCAB = 7


def seq(*layers, tokens=False):
    head = [keras.Input(shape=(T,), dtype="int32")] if tokens else [keras.Input(shape=(T, I))]
    return keras.Sequential(head + list(layers))


def lstm(units, **kw):
    return L.LSTM(units, **kw)


def bidi(mode, seqs=True):
    return lambda: seq(
        L.Bidirectional(L.LSTM(4, return_sequences=seqs), merge_mode=mode),
        L.Dense(2, activation="tanh"),
    )


# name -> builder. Every case is loaded with fromKeras and compared with predict.
MODELS = {
    "lstm_dense": lambda: seq(lstm(4), L.Dense(2)),
    "lstm_stack_softmax": lambda: seq(
        lstm(4, return_sequences=True), L.Dropout(0.5), lstm(3), L.Dense(3, activation="softmax")
    ),
    "lstm_relu": lambda: seq(lstm(4, activation="relu"), L.Dense(2)),
    "lstm_hard_sigmoid": lambda: seq(
        lstm(4, recurrent_activation="hard_sigmoid", return_sequences=True)
    ),
    "lstm_go_backwards": lambda: seq(lstm(4, go_backwards=True, return_sequences=True)),
    "lstm_no_bias": lambda: seq(lstm(4, use_bias=False), L.Dense(2, use_bias=False)),
    "gru_reset_after": lambda: seq(L.GRU(4, reset_after=True), L.Dense(2, activation="sigmoid")),
    "gru_reset_before": lambda: seq(L.GRU(4, reset_after=False, return_sequences=True)),
    "simple_rnn": lambda: seq(
        L.SimpleRNN(4, return_sequences=True), L.SimpleRNN(3, activation="relu"), L.Dense(2)
    ),
    "bidi_concat": bidi("concat", seqs=False),
    "bidi_sum": bidi("sum"),
    "bidi_ave": bidi("ave"),
    "bidi_mul": bidi("mul"),
    "bidi_gru_stack": lambda: seq(
        L.Bidirectional(L.GRU(4, return_sequences=True)),
        L.Bidirectional(L.SimpleRNN(3), merge_mode="sum"),
        L.Dense(2, activation="relu"),
    ),
    "embedding_lstm": lambda: seq(
        L.Embedding(VOCAB, 3), lstm(4), L.Dense(2, activation="softmax"), tokens=True
    ),
    # Refused: the math of these cannot be reproduced.
    "embedding_mask_zero": lambda: seq(L.Embedding(VOCAB, 3, mask_zero=True), lstm(4), tokens=True),
    "lstm_activation_selu": lambda: seq(lstm(4, activation="selu")),
    # Computed step by step (StepwiseLSTM, StepwiseGRU); last, so the cases before keep their
    # random weights.
    "lstm_sigmoid_linear": lambda: seq(
        lstm(4, activation="sigmoid", return_sequences=True),
        lstm(3, activation=None, go_backwards=True),
        L.Dense(2),
    ),
    "bidi_gru_reset_before": lambda: seq(
        L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), merge_mode="ave")
    ),
}

FORMATS = {
    "keras3": [("keras", ".keras"), ("weights", ".weights.h5"), ("h5", ".h5")],
    "keras2": [("h5", ".h5"), ("weights", "_weights.h5")],
}


def main():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(2)
    expected = {}
    files = []
    for name, build in MODELS.items():
        model = build()
        # Every weight random (biases included), so that a misplaced one shows.
        model.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in model.get_weights()])
        tokens = model.inputs[0].dtype in ("int32", "int64") or "int" in str(model.inputs[0].dtype)
        x = (
            rng.integers(0, VOCAB, (2, T)).astype("int32")
            if tokens
            else rng.normal(0, 1, (2, T, I)).astype("float32")
        )
        y = model.predict(x, verbose=0)
        if ONLY and name not in ONLY:
            continue
        expected[f"{FLAVOUR}_{name}/input"] = x.astype("float32")
        expected[f"{FLAVOUR}_{name}/output"] = np.asarray(y, dtype="float32")
        for fmt, ext in FORMATS[FLAVOUR]:
            file = f"{FLAVOUR}_{name}{ext}"
            if fmt == "weights":
                model.save_weights(os.path.join(OUT, file))
            else:
                model.save(os.path.join(OUT, file))
            files.append({"file": file, "case": f"{FLAVOUR}_{name}", "tokens": bool(tokens)})
        # The model's config, for the weights-only files (loadKeras's `config` option).
        with open(os.path.join(OUT, f"{FLAVOUR}_{name}.config.json"), "w") as f:
            f.write(model.to_json())
    np.savez(os.path.join(OUT, f"{FLAVOUR}_expected.npz"), **expected)
    with open(os.path.join(OUT, f"{FLAVOUR}_files.json"), "w") as f:
        json.dump({"version": keras.__version__, "files": files}, f)


main()
