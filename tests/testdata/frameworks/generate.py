"""Writes the files of tests/frameworks_test.ts with the frameworks themselves (see README.md for
the versions): Keras 3 and Keras 2 (tf_keras) models in every format they save, torch 2.x and
torch 1.13 state_dicts and checkpoints, and expected.safetensors (every case's input and the
framework's outputs, float32, named "<case>/<input|output|hidden|state>") with files.json (which
file is which case, with the options that load it or the error it must give).

    python generate.py --keras kerasvenv/bin/python --torch2 torchvenv/bin/python \\
        --torch1 /usr/bin/python3 [--only CASE,...]

With --only (case names without the flavour, e.g. lstm_proj), every model is still built and
run, so the random weights are those of a full run, but only those cases' files are written and
their entries added to (or replaced in) expected.safetensors and files.json: the other files stay
byte-identical.

Only numpy is needed in the interpreter that runs this script.
"""

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, path):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    return {
        name: np.frombuffer(data[start:end], dtype="<f4").reshape(entry["shape"])
        for name, entry in header.items() if name != "__metadata__"
        for start, end in [entry["data_offsets"]]
    }


def case_of(key, tag):
    """`keras3_lstm_proj/input` -> `lstm_proj`."""
    return key.split("/")[0][len(tag) + 1:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keras", required=True, help="python with keras 3, tf_keras, tensorflow")
    parser.add_argument("--torch2", required=True, help="python with torch 2.x")
    parser.add_argument("--torch1", required=True, help="python with torch 1.13")
    parser.add_argument("--only", help="comma-separated cases to (re)write, the others kept")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "GENERATE_ONLY": args.only or ""}
    runs = [
        (args.keras, "keras_models.py", "keras3"),
        (args.keras, "keras_models.py", "keras2"),
        (args.torch2, "torch_models.py", "torch2"),
        (args.torch1, "torch_models.py", "torch1"),
    ]
    expected, manifest = {}, {}
    if only is not None:
        expected = read_safetensors(os.path.join(HERE, "expected.safetensors"))
        with open(os.path.join(HERE, "files.json")) as f:
            manifest = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        for python, script, tag in runs:
            subprocess.run([python, os.path.join(HERE, script), tag, HERE], check=True, env=env)
            npz = os.path.join(HERE, f"{tag}_expected.npz")
            expected.update(dict(np.load(npz)))
            os.remove(npz)
            listing = os.path.join(HERE, f"{tag}_files.json")
            with open(listing) as f:
                listed = json.load(f)
            os.remove(listing)
            if only is not None:
                kept = [e for e in manifest[tag]["files"] if case_of(e["case"], tag) not in only]
                listed["files"] = kept + listed["files"]
            manifest[tag] = listed
    safetensors(expected, os.path.join(HERE, "expected.safetensors"))
    with open(os.path.join(HERE, "files.json"), "w") as f:
        json.dump(manifest, f, indent=1)


main()
