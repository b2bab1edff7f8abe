"""PyTorch peer of bench/tensor-io.js: numpy array -> tensor copy, tensor -> numpy copy, trivial op overhead."""
import json
import sys
import time

import numpy as np
import torch

from timing import median_time



def main():
    args = json.load(sys.stdin)
    torch.set_num_threads(args["threads"])
    n, calls = args["elements"], args["calls"]
    data = (np.arange(n) % 251).astype(np.float32)
    t = torch.from_numpy(data).clone()
    copy_in = median_time(lambda: torch.from_numpy(data).clone(), 7)
    copy_out = median_time(lambda: t.numpy().copy(), 7)

    def trivial():
        for _ in range(calls):
            torch.zeros(1)

    per_call = median_time(trivial, 5) / calls
    print(json.dumps({"version": torch.__version__, "copyIn": copy_in, "copyOut": copy_out, "trivial": per_call}))


if __name__ == "__main__":
    main()
