"""PyTorch peer of bench/nt-xent.js: NT-Xent forward+backward in one of two common PyTorch forms.

Run once per case in a fresh process, so the peak RSS it reports (VmHWM) belongs to that case alone.
  lean:     normalize, z @ z.T / t, mask the diagonal, cross_entropy against the other view's index
  sthalles: sthalles/SimCLR's info_nce_loss (label/eye masks, positives and negatives gathered and concatenated)
            followed by cross_entropy, as in that repository's training loop
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def lean_loss(z, temperature):
    rows = z.shape[0]
    u = F.normalize(z, dim=1)
    logits = (u @ u.T / temperature).masked_fill(torch.eye(rows, dtype=torch.bool), float("-inf"))
    targets = (torch.arange(rows) + rows // 2) % rows
    return F.cross_entropy(logits, targets)


def sthalles_loss(z, temperature):
    # sthalles/SimCLR simclr.py info_nce_loss with batch_size = rows // 2, n_views = 2, device = cpu.
    batch_size, n_views = z.shape[0] // 2, 2
    labels = torch.cat([torch.arange(batch_size) for _ in range(n_views)], dim=0)
    labels = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()
    features = F.normalize(z, dim=1)
    similarity_matrix = torch.matmul(features, features.T)
    mask = torch.eye(labels.shape[0], dtype=torch.bool)
    labels = labels[~mask].view(labels.shape[0], -1)
    similarity_matrix = similarity_matrix[~mask].view(similarity_matrix.shape[0], -1)
    positives = similarity_matrix[labels.bool()].view(labels.shape[0], -1)
    negatives = similarity_matrix[~labels.bool()].view(similarity_matrix.shape[0], -1)
    logits = torch.cat([positives, negatives], dim=1)
    labels = torch.zeros(logits.shape[0], dtype=torch.long)
    logits = logits / temperature
    return F.cross_entropy(logits, labels)


def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main():
    args = json.load(sys.stdin)
    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    loss_fn = {"lean": lean_loss, "sthalles": sthalles_loss}[args["form"]]
    z = torch.randn(2 * args["n"], args["d"], requires_grad=True)
    baseline = rss_kib("VmRSS")

    def step():
        z.grad = None
        loss = loss_fn(z, args["temperature"])
        loss.backward()
        return loss.item()

    for _ in range(args["warmup"]):
        step()
    times, cpu_times = [], []
    for _ in range(args["repeats"]):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)

    def median(values):
        return sorted(values)[len(values) // 2]

    print(json.dumps({"version": torch.__version__, "seconds": median(times), "cpuSeconds": median(cpu_times),
                      "loss": loss, "peakKiB": rss_kib("VmHWM"), "baselineKiB": baseline}))


if __name__ == "__main__":
    main()
