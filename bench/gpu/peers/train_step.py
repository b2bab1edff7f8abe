"""PyTorch peer of bench/gpu/train-step.js: the SimCLR step written the usual PyTorch eager way, with the same settings.

torchvision ResNet (fc removed) + Linear(d, d) -> ReLU -> Linear(d, 128), SGD with momentum (no weight decay on biases
and BatchNorm, as simclr), forward of the 2B views under torch.autocast(bfloat16) in channels-last, the lean NT-Xent in
float32, backward, step, loss.item(). cudnn.benchmark on. Protocol: one JSON argument; prints a ready line; then for
each request line {"steps": n, "resetPeak"?: bool} times n steps and prints {"seconds": median, "peakBytes": ...}.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def lean_nt_xent(z, temperature):
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0] // 2
    s = z @ z.T / temperature
    s.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(0, n, device=z.device)])
    return F.cross_entropy(s, target)


def main():
    a = json.loads(sys.argv[1])
    device = torch.device(a["device"])
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    encoder = getattr(torchvision.models, a["backbone"])()
    width = encoder.fc.in_features
    encoder.fc = nn.Identity()
    model = nn.Sequential(encoder, nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 128))).to(device)
    x = torch.randn(2 * a["batch"], 3, a["size"], a["size"], device=device)
    channels_last = a["memoryFormat"] == "channelsLast"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=a["lr"], momentum=a["momentum"])
    bf16 = a["precision"] == "bf16"
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z = model(x)
        loss = lean_nt_xent(z, a["temperature"])
        loss.backward()
        opt.step()
        return loss.item()

    print(json.dumps({"version": torch.__version__, "cudnn": torch.backends.cudnn.version() if cuda else None}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("resetPeak") and cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(request["steps"]):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) if cuda else None
        print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peakBytes": peak}), flush=True)


if __name__ == "__main__":
    main()
