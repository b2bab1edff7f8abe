"""PyTorch peer of bench/gpu/augment.js: SimCLR's default two-view augmentation in torchvision.transforms.v2, applied
image by image (each image its own random parameters) to a uint8 batch already on the device.

Protocol: one JSON argument {size, blurKernel, device}; prints a ready line; then each request {batch, base, repeats}
times `repeats` batches (after one warm-up) and prints {"seconds": median per batch}.
"""
import json
import sys
import time

import torch
import torchvision
try:
    from torchvision.transforms import v2
    to_float = v2.ToDtype(torch.float32, scale=True)
except ImportError:  # torchvision < 0.15 (Debian's, in the CPU dry run): the v1 transforms take tensors too
    import torchvision.transforms as v2
    to_float = v2.ConvertImageDtype(torch.float32)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def main():
    a = json.loads(sys.argv[1])
    device = torch.device(a["device"])
    view = v2.Compose([
        v2.RandomResizedCrop(a["size"], scale=(0.08, 1.0), antialias=False),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(a["blurKernel"], sigma=(0.1, 2.0))], p=0.5),
        to_float,
        v2.Normalize(MEAN, STD),
    ])
    print(json.dumps({"version": torch.__version__, "torchvision": torchvision.__version__}), flush=True)
    for line in sys.stdin:
        r = json.loads(line)
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (r["batch"], 3, r["base"], r["base"]), dtype=torch.uint8, generator=g).to(device)

        def batch():
            views = torch.stack([view(im) for im in images] + [view(im) for im in images])
            if device.type == "cuda":
                torch.cuda.synchronize()
            return views

        batch()
        times = []
        for _ in range(r["repeats"]):
            start = time.perf_counter()
            batch()
            times.append(time.perf_counter() - start)
        print(json.dumps({"seconds": sorted(times)[len(times) // 2], "method": "torchvision.transforms.v2 per image"}), flush=True)


if __name__ == "__main__":
    main()
