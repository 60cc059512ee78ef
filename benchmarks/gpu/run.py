"""Compile and time the lowered explain modules with JAX's XLA client (no TensorFlow needed).

Checks each module's outputs against TensorFlow's CPU outputs where lower.py stored them (max abs
difference), times it after warm-up, and prints a markdown table: µs per instance, instances per
second, ratio to the model-only floor. With torch and captum importable it adds Captum's KernelShap
on the same network (same sample count, one baseline) and the network alone in PyTorch.

    python benchmarks/gpu/run.py --dir .gpu [--repeats 5] [--captum-instances 16] [--only 2048,16384]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time

import numpy as np


def load_runner():
    import jax
    from jax._src.lib import xla_client

    jax.config.update("jax_enable_x64", True)
    dev = jax.devices()[0]

    def compile_module(text):
        exe = dev.client.compile_and_load(text, xla_client.DeviceList((dev,)), xla_client.CompileOptions())

        def run(arrays):
            bufs = [jax.device_put(a, dev) for a in arrays]
            outs = exe.execute(bufs)
            for o in outs:
                o.block_until_ready()
            return outs

        return run

    return dev, compile_module


def read_module(directory, name):
    with gzip.open(os.path.join(directory, f"{name}.mlir.gz"), "rt") as fh:
        return fh.read()


def inputs_of(npz):
    args = [npz[f"arg_{i}"] for i in range(sum(k.startswith("arg_") for k in npz.files))]
    caps = [npz[f"cap_{i}"] for i in range(sum(k.startswith("cap_") for k in npz.files))]
    return args + caps


def time_it(run, arrays, repeats):
    run(arrays)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(arrays)
        best = min(best, time.perf_counter() - start)
    return best


def captum_rows(directory, n_samples, instances, device_name):
    try:
        import torch
        from captum.attr import KernelShap
    except ImportError as err:
        return [("Captum KernelShap", f"skipped ({err})")]
    w = np.load(os.path.join(directory, "mlp.npz"))
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t = {k: torch.tensor(w[k], device=dev) for k in w.files}
    # Keras Normalization layer: mean, variance, count; then three Dense layers (kernel, bias)
    mean, var = t["w0"], t["w1"]

    def net(x):
        h = (x - mean) / torch.sqrt(torch.clamp(var, min=1e-7))
        h = torch.relu(h @ t["w3"] + t["w4"])
        h = torch.relu(h @ t["w5"] + t["w6"])
        return torch.softmax(h @ t["w7"] + t["w8"], -1)

    with torch.no_grad():
        check = float(torch.max(torch.abs(net(t["probe"]) - t["prediction"])))
    x = t["baseline"].repeat(instances, 1) * (1 + 0.01 * torch.arange(instances, device=dev)[:, None])
    ks = KernelShap(lambda a: net(a)[:, 1])
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    ks.attribute(x[:1], baselines=t["baseline"], n_samples=n_samples)  # warm-up
    sync()
    start = time.perf_counter()
    for i in range(instances):
        ks.attribute(x[i:i + 1], baselines=t["baseline"], n_samples=n_samples)
    sync()
    captum_s = (time.perf_counter() - start) / instances
    rows = torch.randn(n_samples * 16384 // 8, x.shape[1], device=dev)
    with torch.no_grad():
        net(rows)
        sync()
        start = time.perf_counter()
        net(rows)
        sync()
    floor_s = (time.perf_counter() - start) / (16384 // 8)
    return [(f"Captum KernelShap (PyTorch, one baseline, {n_samples} samples; net matches Keras to {check:.1e})",
             captum_s),
            ("network alone in PyTorch, same rows per instance", floor_s)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=".gpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--captum-instances", type=int, default=16)
    parser.add_argument("--only", default="", help="run only the modules whose name contains one of these "
                                                   "comma-separated strings (e.g. 16384)")
    args = parser.parse_args()
    dev, compile_module = load_runner()
    meta = json.load(open(os.path.join(args.dir, "meta.json")))
    table = []
    wanted = [w for w in args.only.split(",") if w]
    for run_meta in meta["runs"]:
        name, n = run_meta["name"], run_meta["n"]
        if wanted and not any(w in name for w in wanted):
            continue
        npz = np.load(os.path.join(args.dir, f"{name}.npz"))
        start = time.perf_counter()
        run = compile_module(read_module(args.dir, name))
        compile_s = time.perf_counter() - start
        arrays = inputs_of(npz)
        outs = run(arrays)
        names = json.loads(str(npz["output_names"]))
        diff = "–"
        if names:
            diff = max(float(np.max(np.abs(np.asarray(o) - npz[f"out_{i}"]))) for i, o in enumerate(outs))
            diff = f"{diff:.1e}"
        seconds = time_it(run, arrays, args.repeats)
        fnpz = np.load(os.path.join(args.dir, f"{run_meta['floor']}.npz"))
        frun = compile_module(read_module(args.dir, run_meta["floor"]))
        floor_s = time_it(frun, inputs_of(fnpz), args.repeats)
        table.append((run_meta["method"], n, run_meta.get("batch_size", "–"), 1e6 * seconds / n, n / seconds,
                      seconds / floor_s, diff))
        print(f"{name}: {1e6 * seconds / n:.2f} µs/instance, floor {1e6 * floor_s / n:.2f} "
              f"(compiled in {compile_s:.1f} s)", flush=True)
    ks_samples = next(r["samples"] for r in meta["runs"] if r["method"] == "kernelshap")
    peers = captum_rows(args.dir, ks_samples, args.captum_instances, str(dev))
    print(f"\nDevice: {getattr(dev, 'device_kind', dev)}; date {time.strftime('%Y-%m-%d')}; "
          f"KernelShap background rows: {meta.get('background')}\n")
    print("| explainer | n | batch_size | µs / instance | instances / s | ratio to floor | max abs diff vs TF CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, n, batch, us, ips, ratio, diff in table:
        print(f"| tfexplain {method} | {n} | {batch} | {us:,.2f} | {ips:,.0f} | {ratio:.2f} | {diff} |")
    for label, value in peers:
        if isinstance(value, str):
            print(f"| {label} | – | – | {value} | | | |")
        else:
            print(f"| {label} | – | – | {1e6 * value:,.1f} | {1 / value:,.0f} | | |")


if __name__ == "__main__":
    main()
