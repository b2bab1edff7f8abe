"""PyTorch peer of simclr's training: the same recipe as a simclr RunConfig, written the usual PyTorch way.

Used by bench/quality.js (pretrain + linear probe) and bench/throughput.js (files -> decode -> augment -> step with a
DataLoader). Arguments: one JSON object (see `main`). Prints one JSON line with the results.
"""
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(split):
    prefix = "train" if split == "train" else "t10k"
    def find(kind):
        for name in (f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"):
            if os.path.exists(os.path.join(FASHION, name)):
                return os.path.join(FASHION, name)
        raise FileNotFoundError(f"{prefix} {kind} in {FASHION}")
    return read_idx(find("images")), read_idx(find("labels")).astype(np.int64)


class ArrayImages(torch.utils.data.Dataset):
    """Grayscale uint8 images as RGB PIL images resized to base_size, like simclr's IdxDataset."""

    def __init__(self, images, labels, base_size, transform):
        self.images, self.labels, self.base_size, self.transform = images, labels, base_size, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i]).convert("RGB").resize((self.base_size, self.base_size), Image.BILINEAR)
        return self.transform(img), int(self.labels[i])


class TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img):
        return torch.stack([self.transform(img), self.transform(img)])


def augmentation(c):
    s = c["jitterStrength"]
    ops = [
        T.RandomResizedCrop(c["imageSize"], scale=(c["minScale"], 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]
    if c["blurProbability"] > 0:
        k = max(1, c["imageSize"] // 10)
        k = k if k % 2 == 1 else k + 1
        ops.append(T.RandomApply([T.GaussianBlur(k, sigma=(0.1, 2.0))], p=c["blurProbability"]))
    ops += [T.ToTensor(), T.Normalize(MEAN, STD)]
    return TwoViews(T.Compose(ops))


def eval_transform(c):
    return T.Compose([T.Resize(c["imageSize"]), T.ToTensor(), T.Normalize(MEAN, STD)])


class SimCLR(nn.Module):
    def __init__(self, c):
        super().__init__()
        encoder = getattr(torchvision.models, c["backbone"])()
        if c["stem"] == "cifar":
            encoder.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            encoder.maxpool = nn.Identity()
        d = encoder.fc.in_features
        encoder.fc = nn.Identity()
        layers = []
        for i in range(c["projectionLayers"] - 1):
            layers += [nn.Linear(d, d, bias=not c["projectionBatchNorm"])]
            if c["projectionBatchNorm"]:
                layers += [nn.BatchNorm1d(d)]
            layers += [nn.ReLU()]
        layers += [nn.Linear(d, c["projectionDim"])]
        self.encoder, self.head = encoder, nn.Sequential(*layers)

    def forward(self, x):
        return self.head(self.encoder(x))


def nt_xent(z, t):
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    s = z @ z.T / t
    s.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)


def learning_rate(step, c, steps_per_epoch, total):
    peak = c["lr"] * (c["batchSize"] / 256 if c["lrScaling"] == "linear" else math.sqrt(c["batchSize"]) if c["lrScaling"] == "sqrt" else 1)
    warm = min(total - 1, round(c["warmupEpochs"] * steps_per_epoch))
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * min(1, (step - warm) / max(1, total - warm))))


def make_optimizer(model, c):
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": c["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if c["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=c["lr"])
    if c["optimizer"] != "sgd":
        raise SystemExit("the PyTorch peer implements sgd and adamw")
    return torch.optim.SGD(groups, lr=c["lr"], momentum=c["momentum"], nesterov=c["nesterov"])


def features(model, loader, bf16):
    """Features h in eval mode, computed as the training ran (bf16 autocast + channels-last, as simclr's evaluation
    of a bf16 run does), returned as float32."""
    model.eval()
    xs, ys = [], []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for x, y in loader:
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            xs.append(model.encoder(x).float())
            ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def linear_probe(train, test, epochs=30, batch=256, lr=1e-3, seed=0):
    """simclr's probe: standardised features, zero-initialised Linear, Adam with a cosine-decayed rate."""
    (xtr, ytr), (xte, yte) = train, test
    mean, std = xtr.mean(0), xtr.std(0, unbiased=False)
    std[std == 0] = 1
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    classes = int(max(ytr.max(), yte.max())) + 1
    head = nn.Linear(xtr.shape[1], classes)
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    steps = epochs * math.ceil(len(xtr) / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr), generator=g).split(batch):
            opt.zero_grad()
            F.cross_entropy(head(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return (head(xte).argmax(1) == yte).float().mean().item()


def main():
    a = json.load(sys.stdin)
    c = a["config"]
    torch.set_num_threads(a.get("threads", 2))
    torch.manual_seed(c["seed"])
    rng = np.random.default_rng(c["seed"])
    images, labels = fashion("train") if a.get("folder") is None else (None, None)
    if a.get("folder"):
        dataset = torchvision.datasets.ImageFolder(a["folder"], transform=T.Compose([T.Resize((c["baseSize"], c["baseSize"])), augmentation(c)]))
    else:
        # The caller's training images when given (bench/quality passes simclr's seeded subset), else a seeded subset.
        keep = np.array(a["trainIndices"]) if a.get("trainIndices") else rng.permutation(len(images))[: c.get("subset") or len(images)]
        dataset = ArrayImages(images[keep], labels[keep], c["baseSize"], augmentation(c))
    loader = torch.utils.data.DataLoader(dataset, batch_size=c["batchSize"], shuffle=True, num_workers=a.get("workers", 0),
                                         drop_last=False, persistent_workers=a.get("workers", 0) > 0)
    model = SimCLR(c)
    # Each side runs with its best precision on the machine: bf16 autocast + channels-last where the CPU has native
    # bf16 (the benches pass "precision"), else float32.
    bf16 = a.get("precision") == "bf16"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, c)
    steps_per_epoch = len(loader)
    total = c.get("maxSteps") or c["epochs"] * steps_per_epoch
    step, images_seen, started, losses = 0, 0, time.time(), []
    rss = {}
    model.train()
    while step < total:
        for views, _ in loader:
            if step >= total:
                break
            if views.shape[0] < 2:
                continue
            x = torch.cat([views[:, 0], views[:, 1]])
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = learning_rate(step, c, steps_per_epoch, total)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                z = model(x)
            loss = nt_xent(z.float(), c["temperature"])
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            images_seen += views.shape[0]
            if step == a.get("timeFromStep", 0):
                started, images_seen = time.time(), 0
            if step in (50, 500):
                rss[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = time.time() - started
    out = {"version": torch.__version__, "steps": step, "imagesPerSecond": images_seen / seconds, "seconds": seconds,
           "lastLoss": losses[-1], "rssKb": rss}
    if a.get("probe"):
        ev = eval_transform(c)
        tr_images, tr_labels = fashion("train")
        te_images, te_labels = fashion("test")
        # The probe's splits: the caller's indices when given (bench/quality passes simclr's), else seeded subsets.
        bank = np.array(a["bankIndices"]) if a.get("bankIndices") else np.random.default_rng(c["seed"] + 7).permutation(len(tr_images))[: a["evalSubset"]]
        query = np.array(a["queryIndices"]) if a.get("queryIndices") else np.random.default_rng(c["seed"] + 8).permutation(len(te_images))[: a["evalSubset"]]
        mk = lambda im, lb, idx: torch.utils.data.DataLoader(ArrayImages(im[idx], lb[idx], c["baseSize"], ev), batch_size=256)
        train_f = features(model, mk(tr_images, tr_labels, bank), bf16)
        test_f = features(model, mk(te_images, te_labels, query), bf16)
        out["linearProbe"] = linear_probe(train_f, test_f, seed=c["seed"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
