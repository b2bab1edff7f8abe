"""PyTorch peer of bench/augment.js: the seed's per-image pipeline (PIL decode, Transforms.BASE, two passes of
Transforms.AUGMENTATION inside Dataset.__getitem__), through a DataLoader with 0 and 2 workers."""
import json
import os
import sys
import time

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils import data


class JitterParams:  # not defined in the seed: SimCLR's strength-1 values
    BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.8, 0.8, 0.8, 0.2


BASE = T.Compose([
    T.Resize((224, 224)),
    T.ToTensor(),
    T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])
AUGMENTATION = T.Compose([
    T.RandomResizedCrop(size=128),
    T.RandomHorizontalFlip(),
    T.RandomApply([T.ColorJitter(brightness=JitterParams.BRIGHTNESS, contrast=JitterParams.CONTRAST,
                                 saturation=JitterParams.SATURATION, hue=JitterParams.HUE)]),
    T.RandomGrayscale(p=.2),
    T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0)),
])


class Folder(data.Dataset):
    def __init__(self, paths):
        self.data = [(p, 0) for p in paths]

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):  # the seed's BioTrove.__getitem__
        path, label = self.data[index]
        img = Image.open(path, mode='r').convert('RGB')
        img = BASE(img)
        xi = AUGMENTATION(img)
        xj = AUGMENTATION(img)
        return (xi, xj), torch.tensor(label, dtype=torch.long)


def images_per_second(dataset, workers, batch):
    loader = data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    seen = 0
    for (xi, _), _ in loader:
        seen += xi.shape[0]
    return seen / (time.perf_counter() - start)


def main():
    args = json.load(sys.stdin)
    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    paths = sorted(os.path.join(args["dir"], f) for f in os.listdir(args["dir"]))[: args["images"]]
    dataset = Folder(paths)
    result = {"version": torch.__version__}
    for workers in args["workers"]:
        result[f"workers{workers}"] = images_per_second(dataset, workers, args["batch"])
    # Augmentation alone: both views of already decoded, resized, normalised images.
    decoded = [BASE(Image.open(p).convert('RGB')) for p in paths[: args["batch"]]]
    start = time.perf_counter()
    views = torch.stack([AUGMENTATION(img) for img in decoded] + [AUGMENTATION(img) for img in decoded])
    result["augmentOnly"] = len(decoded) / (time.perf_counter() - start)
    assert views.shape == (2 * len(decoded), 3, 128, 128)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
