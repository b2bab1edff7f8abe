"""PyTorch peer of bench/checkpoint.js: torch.save of the model's state and SGD momentum of the same size, fsynced."""
import json
import os
import sys

import torch

from timing import median_time


def main():
    args = json.load(sys.stdin)
    torch.set_num_threads(args["threads"])
    model = torch.load(args["state"])
    momentum = {f"{k}/momentum": v.clone() for k, v in model.items() if v.is_floating_point()}

    def save():
        with open(args["out"], "wb") as f:
            torch.save({"model": model, "optimizer": momentum}, f)
            f.flush()
            os.fsync(f.fileno())

    print(json.dumps({"version": torch.__version__, "save": median_time(save, 7)}))


if __name__ == "__main__":
    main()
