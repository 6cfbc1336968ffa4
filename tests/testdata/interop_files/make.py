"""Writes the test files of tests/interop_readers_test.ts (run: /usr/bin/python3 make.py).

torch .pt state_dicts (float32, float64, float16, bfloat16, views, the legacy format), hostile and foreign pickles,
Keras weight files in the Keras 2 (.h5) and Keras 3 (.weights.h5, .keras) layouts written with
h5py (Keras itself is not needed: the group and attribute structure is reproduced), and
expected.safetensors: every tensor the readers must return, as contiguous float32, named
"<file>/<tensor>" (Keras: "<file>/<layer>/<kernel|recurrent_kernel|bias>").
"""

import io
import json
import os
import pickle
import struct
import zipfile

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
expected = {}


def path(name):
    return os.path.join(HERE, name)


def save_torch(name, record, **options):
    torch.save(record, path(name), **options)
    for key, value in record.items():
        expected[f"{name}/{key}"] = value.detach().float().contiguous().numpy()


torch.manual_seed(0)
save_torch("lstm_1layer.pt", torch.nn.LSTM(3, 4, batch_first=True).state_dict())
save_torch(
    "lstm_2layer_bidi.pt",
    torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).state_dict(),
)
save_torch("gru_f64.pt", torch.nn.GRU(3, 4, batch_first=True).double().state_dict())
save_torch("linear_f16.pt", torch.nn.Linear(3, 2).half().state_dict())
save_torch("linear_bf16.pt", torch.nn.Linear(3, 2).bfloat16().state_dict())

# Views: a transpose, a strided slice with an offset, and two tensors sharing one storage.
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
save_torch(
    "views.pt",
    {"transposed": base.t(), "sliced": base[1:, ::2], "row": base[2], "whole": base},
)

# torch's legacy (pre-1.6) format, with a view into a shared storage.
legacy = torch.nn.Linear(3, 2).state_dict()
legacy["weight_t"] = legacy["weight"].t()
save_torch("legacy.pt", legacy, _use_new_zipfile_serialization=False)

# state_dict(keep_vars=True) pickles nn.Parameter through torch._utils._rebuild_parameter.
save_torch("parameters.pt", torch.nn.Linear(3, 2).state_dict(keep_vars=True))

# What loadTorch must refuse.
torch.save({"steps": torch.tensor([1, 2, 3])}, path("int64.pt"))
torch.save([torch.zeros(2)], path("not_a_dict.pt"))
with open(path("plain.pkl"), "wb") as f:
    pickle.dump({"weights": [1.0, 2.0]}, f, protocol=2)


def write_zip(target, entries, compression):
    """A zip of `entries` with fixed timestamps, so the files only change when their data does."""
    with zipfile.ZipFile(target, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)


def torch_zip(name, data_pkl):
    """A zip laid out as torch.save's, holding a hand-written data.pkl."""
    write_zip(path(name), {"archive/data.pkl": data_pkl, "archive/version": "3\n"}, zipfile.ZIP_STORED)


# GLOBAL os.system + REDUCE: what an attacker's file does. It must be refused, never run.
torch_zip("malicious_global.pt", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echo\x85R.")
# The same through protocol 4's STACK_GLOBAL.
torch_zip(
    "malicious_stack_global.pt",
    b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.",
)
# An opcode torch never writes (INST, a protocol 0 call).
torch_zip("malicious_inst.pt", b"(ios\nsystem\n.")


# Keras. Weights are random float32; kernel (I, 4H) with gates i, f, c, o as Keras stores them.
rng = np.random.default_rng(0)


def lstm_weights(inputs, units):
    return {
        "kernel": rng.standard_normal((inputs, 4 * units)).astype(np.float32),
        "recurrent_kernel": rng.standard_normal((units, 4 * units)).astype(np.float32),
        "bias": rng.standard_normal(4 * units).astype(np.float32),
    }


def dense_weights(inputs, units):
    return {
        "kernel": rng.standard_normal((inputs, units)).astype(np.float32),
        "bias": rng.standard_normal(units).astype(np.float32),
    }


# A Sequential: LSTM(5) -> LSTM(4) -> Dropout -> Dense(2) on 3 features.
LAYERS = [
    ("lstm", "LSTM", lstm_weights(3, 5), {"units": 5, "recurrent_activation": "hard_sigmoid"}),
    ("lstm_1", "LSTM", lstm_weights(5, 4), {"units": 4, "recurrent_activation": "sigmoid"}),
    ("dropout", "Dropout", {}, {"rate": 0.1}),
    ("dense", "Dense", dense_weights(4, 2), {"units": 2, "activation": "softmax"}),
]


def layer_config(name, class_name, config):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, **config}}


def keras2_layer_weights(group, name, class_name, weights):
    """Keras 2's save_weights_to_hdf5_group: one group per layer, datasets under weight paths."""
    layer = group.create_group(name)
    cell = f"{name}/lstm_cell" if class_name == "LSTM" else name
    names = [f"{cell}/{key}:0".encode() for key in weights]
    # Keras writes the list as given; an empty list becomes an empty float64 array.
    layer.attrs["weight_names"] = names if names else np.array([])
    for key, value in weights.items():
        layer.create_dataset(f"{cell}/{key}:0", data=value)


def write_keras2(name, full_model):
    with h5py.File(path(name), "w") as f:
        if full_model:
            model_config = {
                "class_name": "Sequential",
                "config": {
                    "name": "sequential",
                    "layers": [layer_config(n, c, cfg) for n, c, _, cfg in LAYERS],
                },
            }
            f.attrs["keras_version"] = "2.15.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(model_config)
            weights = f.create_group("model_weights")
            f.create_group("optimizer_weights")
        else:
            weights = f
        weights.attrs["layer_names"] = [n.encode() for n, _, _, _ in LAYERS]
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.15.0"
        for layer_name, class_name, layer_weights, _ in LAYERS:
            keras2_layer_weights(weights, layer_name, class_name, layer_weights)
    for layer_name, _, layer_weights, _ in LAYERS:
        for key, value in layer_weights.items():
            expected[f"{name}/{layer_name}/{key}"] = value


def write_keras3(target):
    """Keras 3's H5IOStore: layers/<snake_case class name[_n]>/vars/<index>, cells nested."""
    with h5py.File(target, "w") as f:
        f.create_group("vars")
        layers = f.create_group("layers")
        for layer_name, class_name, layer_weights, _ in LAYERS:
            layer = layers.create_group(layer_name)
            own = layer.create_group("vars")
            if class_name == "LSTM":
                own = layer.create_group("cell").create_group("vars")
            for index, value in enumerate(layer_weights.values()):
                own.create_dataset(str(index), data=value)
        f.create_group("optimizer").create_group("vars")


write_keras2("keras2_model.h5", True)
write_keras2("keras2_weights.h5", False)
write_keras3(path("keras3.weights.h5"))
keras3_bytes = io.BytesIO()
write_keras3(keras3_bytes)
keras3_config = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {"batch_shape": [None, None, 3], "name": "input_layer"},
            },
            *[{"module": "keras.layers", **layer_config(n, c, cfg)} for n, c, _, cfg in LAYERS],
        ],
    },
}
write_zip(
    path("model.keras"),
    {
        "metadata.json": json.dumps({"keras_version": "3.6.0"}),
        "config.json": json.dumps(keras3_config),
        "model.weights.h5": keras3_bytes.getvalue(),
    },
    zipfile.ZIP_DEFLATED,
)
for file in ["keras3.weights.h5", "model.keras"]:
    for layer_name, _, layer_weights, _ in LAYERS:
        for key, value in layer_weights.items():
            expected[f"{file}/{layer_name}/{key}"] = value

# An HDF5 file that is not a Keras weight file.
with h5py.File(path("not_keras.h5"), "w") as f:
    f.create_dataset("images", data=np.zeros((2, 2), dtype=np.float32))
    f.create_group("labels")


def write_safetensors(target, tensors):
    header, offset, blobs = {}, 0, []
    for key in sorted(tensors):
        blob = np.ascontiguousarray(tensors[key], dtype="<f4").tobytes()
        header[key] = {
            "dtype": "F32",
            "shape": list(tensors[key].shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    encoded = json.dumps(header).encode()
    with open(target, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


write_safetensors(path("expected.safetensors"), expected)
