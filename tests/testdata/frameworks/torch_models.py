"""The torch files of generate.py: run as `python torch_models.py TAG OUTDIR` with torch 2.x
(TAG torch2) or Debian's torch 1.13 (TAG torch1). Each case saves a .pt file and, in
OUTDIR/<TAG>_expected.npz, its input and torch's output, h_n and c_n; OUTDIR/<TAG>_files.json
lists the files with the fromTorch options that load them (or the error they must give).
"""

import json
import os
import sys

import numpy as np
import torch

TAG, OUT = sys.argv[1], sys.argv[2]
# generate.py --only: every case is built and run (the same random weights), these are written.
ONLY = set(filter(None, os.environ.get("GENERATE_ONLY", "").split(",")))
B, T, I, H = 2, 5, 3, 4
torch.manual_seed(3)
expected, files = {}, []


class Encoder(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn


class Prefixed(torch.nn.Module):
    """A model with the recurrent layer nested: encoder.rnn.weight_ih_l0, plus a head."""

    def __init__(self, rnn, second=None):
        super().__init__()
        self.embed = torch.nn.Linear(I, I)
        self.encoder = Encoder(rnn)
        if second is not None:
            self.decoder = Encoder(second)
        self.head = torch.nn.Linear(H, 2)


def case(name, rnn, options, record=None, refused=None):
    batch_first = rnn.batch_first
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    with torch.no_grad():
        output, hidden = rnn(x)
    if ONLY and name not in ONLY:
        return
    key = f"{TAG}_{name}"
    expected[f"{key}/input"] = x.numpy()
    expected[f"{key}/output"] = output.numpy()
    if isinstance(hidden, tuple):
        expected[f"{key}/hidden"] = hidden[0].numpy()
        expected[f"{key}/state"] = hidden[1].numpy()
    else:
        expected[f"{key}/hidden"] = hidden.numpy()
    file = f"{key}.pt"
    torch.save(rnn.state_dict() if record is None else record, os.path.join(OUT, file))
    entry = {"file": file, "case": key, "options": options}
    if refused is not None:
        entry["refused"] = refused
    files.append(entry)


def lstm(**kw):
    return torch.nn.LSTM(I, H, **{"batch_first": True, **kw})


case("lstm_bias_false", lstm(bias=False), {"mode": "LSTM"})
case("lstm_2layer_bidi", lstm(num_layers=2, bidirectional=True), {"mode": "LSTM"})
case(
    "lstm_seq_first",
    lstm(num_layers=2, bidirectional=True, batch_first=False),
    {"mode": "LSTM", "batchFirst": False},
)
case("gru_2layer_bidi", torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True),
     {"mode": "GRU"})
case("gru_bias_false_seq_first", torch.nn.GRU(I, H, bias=False), {"mode": "GRU", "batchFirst": False})
case("rnn_relu_2layer", torch.nn.RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True),
     {"mode": "RNN_RELU"})
case("rnn_tanh_bidi_seq_first", torch.nn.RNN(I, H, bidirectional=True),
     {"mode": "RNN_TANH", "batchFirst": False})
case("lstm_proj", lstm(proj_size=2), {"mode": "LSTM"})
case("lstm_proj_2layer_bidi", lstm(proj_size=2, num_layers=2, bidirectional=True),
     {"mode": "LSTM"})

rnn = lstm(num_layers=2)
case("prefix", rnn, {"mode": "LSTM"}, record=Prefixed(rnn).state_dict())
rnn = lstm()
case("prefix_two", rnn, {"mode": "LSTM", "prefix": "encoder.rnn."},
     record=Prefixed(rnn, lstm(num_layers=2)).state_dict())
case("prefix_two_unnamed", rnn, {"mode": "LSTM"},
     record=Prefixed(rnn, lstm(num_layers=2)).state_dict(),
     refused="2 candidates: encoder.rnn., decoder.rnn.")
rnn = lstm(bidirectional=True)
model = Prefixed(rnn)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss = rnn(torch.randn(B, T, I))[0].pow(2).mean()
loss.backward()
opt.step()
case("checkpoint", rnn, {"mode": "LSTM"}, record={
    "epoch": 3,
    "model_state_dict": model.state_dict(),
    "optimizer_state_dict": opt.state_dict(),
    "loss": 0.25,
})
case("lstm_proj_3layer_no_bias_seq_first",
     lstm(proj_size=3, num_layers=3, bias=False, batch_first=False),
     {"mode": "LSTM", "batchFirst": False})

np.savez(os.path.join(OUT, f"{TAG}_expected.npz"), **expected)
with open(os.path.join(OUT, f"{TAG}_files.json"), "w") as f:
    json.dump({"version": torch.__version__, "files": files}, f)
