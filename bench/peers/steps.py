"""PyTorch peer of bench/encoders.js in server mode: builds a torchvision ResNet (+ SimCLR head, SGD) once, prints a
ready line, then for each line `n` read from stdin times n iterations and prints {"seconds": median}.

mode 'eval': forward without autograd (model.eval()). mode 'train': a whole SimCLR step as people write it: forward of
the 2B views (under torch.autocast('cpu', bfloat16) for precision bf16), the lean NT-Xent in float32, backward, SGD."""
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
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)


def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    encoder = getattr(torchvision.models, a["backbone"])()
    width = encoder.fc.in_features
    encoder.fc = nn.Identity()
    if a["stem"] == "cifar":
        encoder.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        encoder.maxpool = nn.Identity()
    model = nn.Sequential(encoder, nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 128)))
    rows = a["batch"] * (2 if a["mode"] == "train" else 1)
    x = torch.randn(rows, 3, a["size"], a["size"])
    if a["memoryFormat"] == "channelsLast":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = a["precision"] == "bf16"
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    if a["mode"] == "eval":
        model.eval()

        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                encoder(x)
    else:
        model.train()

        def run():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                z = model(x)
            loss = lean_nt_xent(z, 0.2)
            loss.backward()
            opt.step()
            loss.item()

    run()  # warm-up
    print(json.dumps({"version": torch.__version__}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(json.dumps({"seconds": sorted(times)[len(times) // 2]}), flush=True)


if __name__ == "__main__":
    main()
