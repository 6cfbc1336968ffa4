"""Writes expected.safetensors and cases.json of tests/lrp_seed_test.ts with the LRP-for-LSTMs
seed's own TF2 code (`LSTM_network` of lstm_network.py) on the seed's own model
(sentiment_model.hdf5, copied here from the seed repository). See README.md for the versions.

    kerasvenv/bin/python generate.py --seed-repo /path/to/Layerwise-Relevance-Propagation-for-LSTMs

Every case is a batch of embedded sequences, as the seed's example.ipynb feeds them (random
vectors: the seed's token2vec.pkl is not in its repository). Per case, float64 unless said:

- `<case>/x`: the input (B, T, 60), float32 (the seed reads its float64 copy, so both sides see
  the same numbers).
- `<case>/relevance` (B, T, 60) and `<case>/rest` (B): `LSTM_network.lrp`'s two results.
- `<case>/scores` (B, 5): the seed's forward (`y_hat`); `<case>/keras` (B, 5), float32: tf_keras'
  `model.predict` of the same file, for the loader's forward.
- `<case>/target` (B), int32: the class explained (given, or the seed's argmax).
- `<case>/<forward|backward>_<hidden|cell>` (B, T, 60): the relevance of every step's hidden and
  cell state, from `lrp_lstm`'s per-step outputs (see README.md for how they are laid out).
- `<case>/lengths` (B), int32, for the padded case: sequence b is explained alone on its first
  lengths[b] steps (the seed needs sequences of one length); the rest of its row is zero.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "sentiment_model.hdf5")
H, I, C = 60, 60, 5

# (name, batch, steps, eps, bias_factor, targets or None, lengths or None)
CASES = [
    ("predicted", 4, 9, 1e-3, 0.0, None, None),  # the example's explanation
    ("conserved", 4, 9, 0.0, 1.0, None, None),  # the example's conservation check
    ("targets", 4, 9, 1e-3, 0.0, [0, 1, 3, 4], None),
    ("stabilised", 3, 6, 1e-2, 1.0, [2, 2, 2], None),
    ("lengths", 4, 9, 1e-3, 1.0, None, [9, 6, 3, 1]),
]


def safetensors(tensors, path):
    kinds = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<i4"): "I32"}
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        data = array.tobytes()
        header[name] = {"dtype": kinds[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def seed_weights():
    """The list the seed's example builds from `keras_model.get_weights()` plus a zero bias."""
    with h5py.File(MODEL, "r") as f:
        bi = f["model_weights/bidirectional_3/bidirectional_3"]
        names = ["kernel:0", "recurrent_kernel:0", "bias:0"]
        weights = [bi[f"{d}_lstm_3/{n}"][()] for d in ("forward", "backward") for n in names]
        weights.append(f["model_weights/dense_2/dense_2/kernel:0"][()])
    weights.append(np.zeros((C,)))
    return [w.astype(np.float64) for w in weights]


def explain_alone(LSTM_network, weights, x, eps, bias_factor, target):
    """The seed on one batch of one length: a fresh LSTM_network (TF 2.21 needs one per shape)."""
    net = LSTM_network(H, I, C, weights)
    xt = tf.constant(x)
    y = None if target is None else np.asarray(target, dtype=np.int64)
    relevance, rest = net.lrp(xt, y=y, eps=eps, bias_factor=bias_factor)
    scores = net.y_hat.numpy()
    target = np.argmax(scores, axis=1) if target is None else np.asarray(target)
    # The per-step outputs: scan index k is step t = T-1-k, in each direction's reading order;
    # entries 0/1 (3/4) are the relevance of h_{t-1} and c_{t-1} (that of h_{t-1} included).
    steps = [a.numpy() for a in net.lrp_lstm(xt, y, eps, bias_factor)]
    # The relevance at the final hidden states, as lrp_lstm starts its scan (its initializer).
    _, out_fw, out_bw = net.full_pass(xt)
    mask = tf.one_hot(target, depth=C, dtype=tf.float64)
    top = [
        net.lrp_linear_layer(h, w, net.b_dense, net.y_hat, net.y_hat * mask, 2 * H, eps,
                             bias_factor).numpy()
        for h, w in ((out_fw[3][-1], net.W_dense_fw), (out_bw[3][0], net.W_dense_bw))
    ]
    B, T = x.shape[:2]
    states = {}
    for d, (name, h_at, c_at) in enumerate((("forward", 0, 1), ("backward", 3, 4))):
        for kind, at in (("hidden", h_at), ("cell", c_at)):
            # In reading order r: r = T-1 is the top; r < T-1 is scan entry T-2-r.
            read = np.empty((T, B, H))
            read[T - 1] = top[d]
            for r in range(T - 1):
                read[r] = steps[at][T - 2 - r]
            by_step = np.transpose(read, (1, 0, 2))
            # The backward direction read position p at step T-1-p.
            states[f"{name}_{kind}"] = by_step[:, ::-1] if name == "backward" else by_step
    return {
        "relevance": relevance.numpy(),
        "rest": rest.numpy(),
        "scores": scores,
        "target": target.astype(np.int32),
        **states,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed-repo", required=True, help="a checkout of the seed repository")
    args = parser.parse_args()
    sys.path.insert(0, args.seed_repo)
    from lstm_network import LSTM_network

    import tf_keras

    keras_model = tf_keras.models.load_model(MODEL, compile=False)
    weights = seed_weights()
    rng = np.random.RandomState(2020)
    expected, manifest = {}, []
    for name, B, T, eps, bias_factor, targets, lengths in CASES:
        x = rng.randn(B, T, I).astype(np.float32)
        x64 = x.astype(np.float64)
        if lengths is None:
            out = explain_alone(LSTM_network, weights, x64, eps, bias_factor, targets)
        else:
            # One sequence at a time on its own steps, written into rows padded with zeros.
            out = {}
            for b, length in enumerate(lengths):
                one = explain_alone(LSTM_network, weights, x64[b:b + 1, :length], eps,
                                    bias_factor, None if targets is None else targets[b:b + 1])
                for key, value in one.items():
                    if key not in out:
                        out[key] = np.zeros((B, T) + value.shape[2:], value.dtype) \
                            if value.ndim == 3 else np.zeros((B,) + value.shape[1:], value.dtype)
                    if value.ndim == 3:
                        out[key][b, :length] = value[0]
                    else:
                        out[key][b] = value[0]
            expected[f"{name}/lengths"] = np.asarray(lengths, dtype=np.int32)
        if lengths is None:
            expected[f"{name}/keras"] = keras_model.predict(x, verbose=0).astype(np.float32)
        expected[f"{name}/x"] = x
        for key, value in out.items():
            expected[f"{name}/{key}"] = value
        manifest.append({"case": name, "eps": eps, "biasFactor": bias_factor,
                         "target": targets, "lengths": lengths})
        if lengths is None:
            gap = np.abs(out["scores"] - expected[f"{name}/keras"]).max()
            print(f"{name}: seed vs Keras forward {gap:.2e}")
    safetensors(expected, os.path.join(HERE, "expected.safetensors"))
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump({"seedCommit": SEED_COMMIT, "versions": versions(), "cases": manifest}, f,
                  indent=2)
        f.write("\n")


SEED_COMMIT = "f337aa76c5c910c495cc134eba04d54028265e12"


def versions():
    import tf_keras
    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "h5py": h5py.__version__}


main()
