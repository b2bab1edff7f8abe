"""PyTorch peer of bench/gpu/nt-xent.js: NT-Xent forward + backward in the lean PyTorch form, on the given device.

Protocol: one JSON argument {d, temperature, device}; prints a ready line; then each request {n, repeats} runs one
warm-up and `repeats` timed passes over z (2n x d, float32) and prints {"seconds": median, "loss", "peakBytes": the
peak CUDA allocation beyond z itself}.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def lean_loss(z, temperature):
    rows = z.shape[0]
    u = F.normalize(z, dim=1)
    logits = (u @ u.T / temperature).masked_fill(torch.eye(rows, dtype=torch.bool, device=z.device), float("-inf"))
    targets = (torch.arange(rows, device=z.device) + rows // 2) % rows
    return F.cross_entropy(logits, targets)


def main():
    a = json.loads(sys.argv[1])
    device = torch.device(a["device"])
    cuda = device.type == "cuda"
    print(json.dumps({"version": torch.__version__}), flush=True)
    for line in sys.stdin:
        r = json.loads(line)
        torch.manual_seed(0)
        z = torch.randn(2 * r["n"], a["d"], device=device, requires_grad=True)

        def step():
            z.grad = None
            loss = lean_loss(z, a["temperature"])
            loss.backward()
            return loss.item()

        step()
        z.grad = None  # the baseline is z alone, as on simclr's side
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(r["repeats"]):
            start = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) - base if cuda else None
        print(json.dumps({"seconds": sorted(times)[len(times) // 2], "loss": loss, "peakBytes": peak}), flush=True)
        del z


if __name__ == "__main__":
    main()
