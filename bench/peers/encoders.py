"""PyTorch peer of bench/encoders.js: torchvision ResNet eval forward and train forward+backward, seconds per batch."""
import json
import sys
import time

import torch

from timing import median_time
import torchvision



def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    model = getattr(torchvision.models, args["backbone"])()
    model.fc = torch.nn.Identity()
    if args["stem"] == "cifar":
        model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    batch, size = args["batch"], args["size"]
    x = torch.randn(batch, 3, size, size)

    model.eval()

    def forward():
        with torch.no_grad():
            model(x)

    eval_seconds = median_time(forward, args["repeats"])
    model.train()
    grad = torch.randn(batch, 512 if args["backbone"] in ("resnet18", "resnet34") else 2048)

    def train_step():
        model(x).backward(grad)
        model.zero_grad(set_to_none=True)

    train_seconds = median_time(train_step, args["repeats"])
    print(json.dumps({"version": torch.__version__, "evalSeconds": eval_seconds, "trainSeconds": train_seconds}))


if __name__ == "__main__":
    main()
