"""The PyTorch side of bench/compare.ts: times the reference package (array-lstm from PyPI) and
torch.nn.LSTM on one configuration and prints one JSON line per measurement.

    python3 bench/compare_torch.py '{"batch":1024,"seqLen":10,"inputSize":10,"hiddenSize":128,"k":4,"runs":5,"train":false}'

Every model is timed with 1 and 2 threads and the faster median is kept (the best thread setting,
as a PyTorch user would tune it), each timed as bench/_time_ours.ts times ours (a warm-up of 0.5 s,
then the median of at least `runs` calls that take at least 1 s together). Forward runs under
no_grad; the training step is the forward, `output.sum().backward()` and nothing else, as the
reference's own training loop spends it. With
`train`, one more row, "docs network": a whole training step of the documentation's network, the
reference's ArrayLSTM -> torch.nn.Linear(hidden, input) on the final hidden state -> log_softmax ->
nll_loss, backward and an Adam step (lr 1e-3), on one-hot inputs of seeded tokens with the first
token as the class (bench/_configs.ts `docTraining` is ours).
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
    if train:
        output, _ = model(x)
        output.sum().backward()
    else:
        with torch.no_grad():
            model(x)


class DocsNetwork:
    """The documentation's network and its optimizer; calling it is one training step."""

    def __init__(self, config):
        from arrayLSTM import ArrayLSTM

        B, T, I = config["batch"], config["seqLen"], config["inputSize"]
        H, k = config["hiddenSize"], config["k"]
        tokens = torch.randint(0, I, (B, T))
        self.x = torch.nn.functional.one_hot(tokens, I).float()
        self.y = tokens[:, 0]
        self.lstm = ArrayLSTM(I, H, k)
        self.linear = torch.nn.Linear(H, I)
        parameters = [*self.lstm.parameters(), *self.linear.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=1e-3)

    def step(self):
        self.optimizer.zero_grad()
        _, (hidden, _) = self.lstm(self.x)
        logits = self.linear(hidden.reshape(hidden.shape[-2], -1))
        loss = torch.nn.functional.nll_loss(torch.log_softmax(logits, dim=1), self.y)
        loss.backward()
        self.optimizer.step()


# As bench/_time_ours.ts times ours: warm up this long, then time at least `runs` calls that take
# at least TIMED_S together (at most MAX_RUNS). One warm-up call was too few for a new thread
# count: torch.nn.LSTM's doc forward measured 1.05-1.10 ms a step that way, 0.86-0.90 warmed.
WARM_UP_S = 0.5
TIMED_S = 1.0
MAX_RUNS = 200


def median_time(step, runs):
    """The median seconds of a call of `step`, timed as ours is."""
    started = time.perf_counter()
    while True:
        step()
        if time.perf_counter() - started >= WARM_UP_S:
            break
    times = []
    while len(times) < MAX_RUNS and (len(times) < runs or sum(times) < TIMED_S):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def best_median(step, runs):
    """The faster median of `step` with 1 and 2 threads, and its thread count."""
    best = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        median = median_time(step, runs)
        if best is None or median < best[0]:
            best = (median, threads)
    return best


def report(name, best, config):
    line = {
        "model": name,
        "msPerStep": best[0] * 1000 / config["seqLen"],
        "threads": best[1],
        "torch": torch.__version__,
    }
    print(json.dumps(line), flush=True)


def main():
    config = json.loads(sys.argv[1])
    torch.manual_seed(0)
    x = torch.randn(config["batch"], config["seqLen"], config["inputSize"])
    for name, make in reference_models(config).items():
        model = make()
        report(name, best_median(lambda: time_once(model, x, config["train"]), config["runs"]), config)
    if config["train"]:
        network = DocsNetwork(config)
        report("docs network", best_median(network.step, config["runs"]), config)


main()
