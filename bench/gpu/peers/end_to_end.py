"""PyTorch peer of bench/gpu/end-to-end.js: JPEG files -> DataLoader (ImageFolder, PIL, torchvision transforms, `workers`
processes, pin_memory) -> two views -> the SimCLR step of peers/train_step.py on the device.

Protocol: one JSON argument (the benchmark's config, folder, device); prints a ready line; the request {"run": true}
runs `warmup` + `steps` steps and prints {"imagesPerSecond", "waitFraction", "utilisation"}: the time from each step's
end (loss.item()) to the next step's start over the total, and the GPU's mean utilisation over the timed steps.
"""
import json
import subprocess
import sys
import threading
import time

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T

from train_step import lean_nt_xent

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img):
        return torch.stack([self.transform(img), self.transform(img)])


def blur_kernel(size):
    k = max(1, size // 10)
    return k if k % 2 == 1 else k + 1


class Utilisation:
    """nvidia-smi's utilization.gpu every 100 ms, in a thread, while running."""

    def __init__(self, device):
        self.samples, self.proc = [], None
        if device.type != "cuda":
            return
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "-i", str(device.index or 0), "--query-gpu=utilization.gpu",
                                          "--format=csv,noheader,nounits", "-lms", "100"], stdout=subprocess.PIPE, text=True)
        except OSError:
            return
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line) / 100)
            except ValueError:
                pass

    def stop(self):
        if self.proc is None:
            return None
        self.proc.terminate()
        self.proc.wait()
        kept = self.samples[1:]
        return sum(kept) / len(kept) if kept else None


def main():
    a = json.loads(sys.argv[1])
    device = torch.device(a["device"])
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    view = T.Compose([
        T.RandomResizedCrop(a["size"], scale=(0.08, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(blur_kernel(a["size"]), sigma=(0.1, 2.0))], p=0.5),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
    dataset = torchvision.datasets.ImageFolder(a["folder"], transform=TwoViews(view))
    loader = torch.utils.data.DataLoader(dataset, batch_size=a["batch"], shuffle=True, num_workers=a["workers"],
                                         pin_memory=cuda, drop_last=True, persistent_workers=a["workers"] > 0)
    encoder = getattr(torchvision.models, a["backbone"])()
    width = encoder.fc.in_features
    encoder.fc = nn.Identity()
    model = nn.Sequential(encoder, nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 128))).to(device)
    channels_last = a["memoryFormat"] == "channelsLast"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=a["lr"], momentum=a["momentum"])
    bf16 = a["precision"] == "bf16"
    model.train()
    print(json.dumps({"version": torch.__version__}), flush=True)

    def batches():
        while True:
            for views, _ in loader:
                yield views

    for line in sys.stdin:
        json.loads(line)
        it = batches()
        waited, start, sampler = 0.0, None, None
        for s in range(a["warmup"] + a["steps"]):
            if s == a["warmup"]:
                start, waited, sampler = time.perf_counter(), 0.0, Utilisation(device)
            idle_from = time.perf_counter()
            views = next(it).to(device, non_blocking=True)
            x = torch.cat([views[:, 0], views[:, 1]])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            waited += time.perf_counter() - idle_from
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                z = model(x)
            loss = lean_nt_xent(z, a["temperature"])
            loss.backward()
            opt.step()
            loss.item()
        total = time.perf_counter() - start
        print(json.dumps({"imagesPerSecond": a["steps"] * a["batch"] / total, "waitFraction": waited / total,
                          "utilisation": sampler.stop()}), flush=True)


if __name__ == "__main__":
    main()
