#!/usr/bin/env python3
"""bae against Hugging Face transformers on the same GGUF model, in alternating rounds.

    .venv/bin/python scripts/bench_vs_transformers.py --gguf models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf

Each round runs `bae bench forward` and then scripts/bench_hf_forward.py with the same
batch, length and iteration count, so that slow phases of a shared machine hit both
sides; a ratio is taken per round. Prints one JSON object: per-round tokens/s of every
variant, and the median and range of bae plain / transformers plain over the rounds.
`--bae` names the binary (default target/debug/bae; build it with `cargo build`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--bae", default=os.path.join(HERE, "..", "target", "debug", "bae"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    shape = ["--batch", str(args.batch), "--seq", str(args.seq), "--iters", str(args.iters)]
    rounds = []
    for r in range(args.rounds):
        ours = run_json([args.bae, "bench", "forward", "-m", args.gguf, "--json", *shape])
        theirs = run_json([sys.executable, os.path.join(HERE, "bench_hf_forward.py"), "--gguf", args.gguf, *shape])
        row = {"bae " + v["variant"]: v["tokens_per_s"] for v in ours["results"]}
        row.update({"transformers " + v["variant"]: v["tokens_per_s"] for v in theirs["results"]})
        row["bae hook overhead"] = ours["hook_overhead"]
        row["ratio plain"] = row["bae plain (logits)"] / row["transformers plain"]
        rounds.append(row)
        print(f"round {r + 1}: {json.dumps(row)}", file=sys.stderr)
    ratios = [r["ratio plain"] for r in rounds]
    print(
        json.dumps(
            {
                "gguf": args.gguf,
                "batch": args.batch,
                "seq": args.seq,
                "iters": args.iters,
                "threads": os.cpu_count(),
                "rounds": rounds,
                "ratio_plain_median": statistics.median(ratios),
                "ratio_plain_range": [min(ratios), max(ratios)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
