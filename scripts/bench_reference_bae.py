#!/usr/bin/env python3
"""Training throughput of the reference BAE formulation in PyTorch on this CPU, for the
comparison with `bae bench train` in BENCHMARKS.md.

    .venv/bin/python scripts/bench_reference_bae.py [--d 576] [--features 2304] [--batch 512] [--steps 20] [--device cpu|cuda]

Same model and losses as the reference code (encoder with bias, step binarization whose
backward is g * (1 - g), decoder with bias; MSE + 1e-7 * entropy + 1e-7 * covariance via
torch.cov; Adam lr 5e-4), on seeded random rows, f32, `--threads` intra-op threads
(default: all cores), on the CPU or the first GPU (`--device cuda`, each step
synchronised before its clock stops). Prints rows/s (median over steps after 3 warm-up
steps) as JSON.
"""
import argparse
import json
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--features", type=int, default=2304)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Binarize(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            return g * (1 - g)

    device = torch.device(args.device)
    enc = torch.nn.Linear(args.d, args.features).to(device)
    dec = torch.nn.Linear(args.features, args.d).to(device)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=5e-4)
    data = torch.randn(args.batch * 4, args.d, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(x):
        z = Binarize.apply(enc(x))
        y = dec(z)
        mse = torch.mean((x - y) ** 2)
        p = z.mean(0)
        entropy = -torch.sum(p * torch.log2(p + 1e-10) + (1 - p) * torch.log2(1 - p + 1e-10))
        cov = torch.cov(z.T)
        covariance = torch.sum(torch.abs(cov)) - torch.sum(torch.abs(torch.diag(cov)))
        loss = mse + 1e-7 * entropy + 1e-7 * covariance
        opt.zero_grad()
        loss.backward()
        opt.step()

    times = []
    for i in range(3 + args.steps):
        x = data[(i % 4) * args.batch : (i % 4 + 1) * args.batch]
        sync()
        start = time.perf_counter()
        step(x)
        sync()
        if i >= 3:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(json.dumps({"torch": torch.__version__, "device": name, "threads": args.threads, "d": args.d, "features": args.features,
                      "batch": args.batch, "seconds_per_step": seconds, "rows_per_s": args.batch / seconds}))


if __name__ == "__main__":
    main()
