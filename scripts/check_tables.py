#!/usr/bin/env python3
"""Reads bae's Parquet tables with pyarrow alone and checks their schema and values:
proof that the files open outside bae, and a guard on what their columns promise.

    .venv/bin/python scripts/check_tables.py FILE.parquet [FILE.parquet ...]

The table kind comes from the file's `format` metadata (bae.entropy.v1, bae.icl.v1,
bae.fidelity.v1, bae.features.v1, bae.feature-samples.v1, bae.compare.v1,
bae.training-log.v1). Prints one JSON line per file; exits 1 at the first problem,
naming the file, column and row.
"""
import json
import math
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# The definitions, generated from the library's tables module (a test keeps the file
# current): format -> [{"name", "kind", "nullable"}].
KINDS = {"u32": pa.uint32(), "u64": pa.uint64(), "f64": pa.float64(), "utf8": pa.string(), "bool": pa.bool_()}
with open(pathlib.Path(__file__).with_name("table_schemas.json")) as f:
    SCHEMAS = json.load(f)


class Bad(Exception):
    pass


def require(ok, where, message):
    if not ok:
        raise Bad(f"{where}: {message}")


def in_range(rows, column, lo, hi, where, when=lambda r: True):
    for i, r in enumerate(rows):
        if not when(r):
            continue
        v = r[column]
        require(v is not None and not (isinstance(v, float) and math.isnan(v)) and lo <= v <= hi,
                f"{where}, row {i}, column {column}", f"{v!r} is outside [{lo}, {hi}]")


def null_iff(rows, column, predicate, where):
    for i, r in enumerate(rows):
        require((r[column] is None) == predicate(r), f"{where}, row {i}, column {column}",
                f"{r[column]!r}: expected {'null' if predicate(r) else 'a value'}")


def check_gates(rows, where, has_hook):
    """Every row of a measured hook carries log2(states) and its hook's gate verdict."""
    for i, r in enumerate(rows):
        if r["states"] is not None:
            want = math.log2(r["states"]) if r["states"] > 1 else 0.0
            require(abs(r["log2_states"] - want) < 1e-9, f"{where}, row {i}", f"log2_states {r['log2_states']} != {want}")
        if has_hook(r):
            require(r["quality"] in ("pass", "fail", "unknown"), f"{where}, row {i}", f"quality {r['quality']!r}")
            require((r["bae_val_fvu"] is None) == (r["quality"] == "unknown"), f"{where}, row {i}",
                    "bae_val_fvu must be recorded exactly when the verdict is known")


def check(path):
    table = pq.read_table(path)
    # The file's key-value metadata (not the Arrow schema's).
    meta = {k.decode(): v.decode() for k, v in (pq.ParquetFile(path).metadata.metadata or {}).items()}
    fmt = meta.get("format")
    require(fmt in SCHEMAS, path, f"format {fmt!r} is not one of {sorted(SCHEMAS)}")
    defined = [c["name"] for c in SCHEMAS[fmt]]
    require(table.column_names == defined, path, f"columns {table.column_names}, defined {defined}")
    for column in SCHEMAS[fmt]:
        field = table.schema.field(column["name"])
        kind = KINDS[column["kind"]]
        require(field.type == kind, path, f"column {field.name} is {field.type}, expected {kind}")
        require(field.nullable == column["nullable"], path,
                f"column {field.name} nullable={field.nullable}, defined nullable={column['nullable']}")
    require((table.schema.metadata or {}).get(b"format", b"").decode() == fmt, path,
            "the Arrow schema's metadata does not carry the format")
    rows = table.to_pylist()
    require(len(rows) > 0, path, "no rows")
    if fmt != "bae.training-log.v1":
        model = json.loads(meta["model"])
        require(len(model.get("weights_sha256", "")) == 64, path, "metadata model.weights_sha256 is not a sha256")
        json.loads(meta["config"])
        require(meta.get("bae_version"), path, "no bae_version in the metadata")
    if fmt == "bae.entropy.v1":
        for i, r in enumerate(rows):
            require(r["scope"] in ("position", "prompt"), f"{path}, row {i}", f"scope {r['scope']!r}")
        null_iff(rows, "position", lambda r: r["scope"] == "prompt", path)
        null_iff(rows, "prompt", lambda r: r["scope"] == "position", path)
        in_range(rows, "states", 1, 2**63, path)
        check_gates(rows, path, lambda r: True)
        in_range(rows, "bits_per_feature", 0.0, 1.0, path)
        in_range(rows, "active_fraction", 0.0, 1.0, path)
        in_range(rows, "entropy_bits", 0.0, float("inf"), path)
    elif fmt == "bae.fidelity.v1":
        in_range(rows, "tokens", 1, 2**63, path)
        in_range(rows, "kl", -1e-6, float("inf"), path)
        in_range(rows, "js", -1e-6, math.log(2) + 1e-6, path)
        for column in ("ce_clean", "ce_spliced", "ce_zero"):
            in_range(rows, column, 0.0, float("inf"), path)
    elif fmt == "bae.features.v1":
        require([r["feature"] for r in rows] == list(range(len(rows))), path, "features are not 0..d'-1 in order")
        in_range(rows, "density", 0.0, 1.0, path)
        for i, r in enumerate(rows):
            where = f"{path}, row {i}"
            expected = "dead" if r["active_tokens"] == 0 else ("dense" if r["density"] > 0.5 else "live")
            require(r["class"] == expected, where, f"class {r['class']!r}, expected {expected!r}")
            require(r["samples"] <= r["assigned_tokens"], where, "more samples than tokens handed to the feature")
        for column in ("explanation", "judged"):
            null_iff(rows, column, lambda r: r["score"] is None, path)
        in_range(rows, "score", 0.0, 1.0, path, lambda r: r["score"] is not None)
    elif fmt == "bae.feature-samples.v1":
        previous = None
        for i, r in enumerate(rows):
            where = f"{path}, row {i}"
            require(r["list"] in ("assigned", "top"), where, f"list {r['list']!r}")
            key = (r["feature"], r["list"], r["sample"])
            require(previous is None or key > previous, where, "rows are not in (feature, list, sample) order")
            require(r["role"] in (None, "explain", "judge"), where, f"role {r['role']!r}")
            require(r["role"] is None or r["list"] == "assigned", where, "a top row has a judge role")
            require(r["token"] != "" or r["before"] != "", where, "empty token with no context")
            if r["list"] == "top" and previous is not None and previous[:2] == key[:2]:
                require(r["score"] <= last_score + 1e-12, where, "top rows are not best first")
            last_score = r["score"]
            previous = key
        null_iff(rows, "verdict", lambda r: r["role"] != "judge", path)
    elif fmt == "bae.compare.v1":
        in_range(rows, "fvu", 0.0, float("inf"), path)
        in_range(rows, "l0", 0.0, float("inf"), path)
        in_range(rows, "kl", -1e-6, float("inf"), path)
        in_range(rows, "js", -1e-6, math.log(2) + 1e-6, path)
        null_iff(rows, "interpretability", lambda r: r["scored_features"] == 0, path)
        histogram = [c for c in table.column_names if c.startswith("density_")]
        require(len(histogram) == 9, path, f"{len(histogram)} density columns, expected 9")
        for i, r in enumerate(rows):
            require(sum(r[c] for c in histogram) == r["d_hidden"], f"{path}, row {i}", "density histogram does not sum to d_hidden")
    elif fmt == "bae.icl.v1":
        for i, r in enumerate(rows):
            require(r["scope"] in ("aggregate", "sample"), f"{path}, row {i}", f"scope {r['scope']!r}")
        aggregate = lambda r: r["scope"] == "aggregate"
        sample = lambda r: r["scope"] == "sample"
        for column in ("hook", "entropy_bits", "bits_per_feature", "active_fraction", "quality"):
            null_iff(rows, column, sample, path)
        check_gates(rows, path, aggregate)
        for column in ("sample", "query", "demo_indices", "prompt_tokens"):
            null_iff(rows, column, aggregate, path)
        in_range(rows, "accuracy", 0.0, 1.0, path)
        in_range(rows, "label_logprob", -float("inf"), 1e-6, path)
        in_range(rows, "bits_per_feature", 0.0, 1.0, path, aggregate)
        in_range(rows, "active_fraction", 0.0, 1.0, path, aggregate)
        for i, r in enumerate(rows):
            if sample(r):
                demos = [int(x) for x in r["demo_indices"].split(",")] if r["demo_indices"] else []
                require(len(demos) == r["demos"] and r["query"] not in demos, f"{path}, row {i}",
                        f"demo_indices {r['demo_indices']!r} do not fit demos = {r['demos']} and query {r['query']}")
    else:
        for i, r in enumerate(rows):
            require(r["split"] in ("train", "val"), f"{path}, row {i}", f"split {r['split']!r}")
        in_range(rows, "fvu", 0.0, float("inf"), path)
        in_range(rows, "entropy_bits_per_feature", 0.0, 1.0, path)
        histogram = [c for c in table.column_names if c.startswith("density_")]
        require(len(histogram) == 9, path, f"{len(histogram)} density columns, expected 9")
        features = {sum(r[c] for c in histogram) for r in rows}
        require(len(features) == 1, path, f"density histograms sum to different feature counts {sorted(features)}")
    return {"file": str(path), "format": fmt, "rows": len(rows), "columns": len(table.column_names), "ok": True}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        try:
            print(json.dumps(check(path)))
        except Bad as e:
            print(f"check_tables: {e}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
