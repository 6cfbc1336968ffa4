"""The PyTorch side of bench/compare.ts: times the reference package (array-lstm from PyPI) and
torch.nn.LSTM on one configuration and prints one JSON line per measurement.

    python3 bench/compare_torch.py '{"batch":1024,"seqLen":10,"inputSize":10,"hiddenSize":128,"k":4,"runs":5,"train":false}'

Every model is timed with 1 and 2 threads and the faster median is kept (the best thread setting,
as a PyTorch user would tune it). Forward runs under no_grad; the training step is the forward,
`output.sum().backward()` and nothing else, as the reference's own training loop spends it.
"""

import json
import statistics
import sys
import time

import torch


def reference_models(config):
    from arrayLSTM import LSTM, ArrayLSTM
    from arrayLSTM.extensions import AttentionArrayLSTM, StochasticArrayLSTM

    I, H, k = config["inputSize"], config["hiddenSize"], config["k"]
    return {
        "LSTM": lambda: LSTM(I, H),
        "ArrayLSTM": lambda: ArrayLSTM(I, H, k),
        "AttentionArrayLSTM": lambda: AttentionArrayLSTM(I, H, k),
        "StochasticArrayLSTM": lambda: StochasticArrayLSTM(I, H, k),
        "torch.nn.LSTM": lambda: torch.nn.LSTM(I, H, batch_first=True),
    }


def time_once(model, x, train):
    started = time.perf_counter()
    if train:
        output, _ = model(x)
        output.sum().backward()
    else:
        with torch.no_grad():
            model(x)
    return time.perf_counter() - started


def main():
    config = json.loads(sys.argv[1])
    torch.manual_seed(0)
    x = torch.randn(config["batch"], config["seqLen"], config["inputSize"])
    for name, make in reference_models(config).items():
        model = make()
        best = None
        for threads in (1, 2):
            torch.set_num_threads(threads)
            time_once(model, x, config["train"])  # warm-up
            times = [time_once(model, x, config["train"]) for _ in range(config["runs"])]
            median = statistics.median(times)
            if best is None or median < best[0]:
                best = (median, threads)
        print(
            json.dumps(
                {
                    "model": name,
                    "msPerStep": best[0] * 1000 / config["seqLen"],
                    "threads": best[1],
                    "torch": torch.__version__,
                }
            ),
            flush=True,
        )


main()
