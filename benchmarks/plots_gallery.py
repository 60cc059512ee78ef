"""Renders the README's plot gallery from the demo model: docs/img/{bar,beeswarm,waterfall,lime_bars}.png.

python benchmarks/plots_gallery.py [--out docs/img]   (needs scikit-learn and matplotlib)
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402

import tfexplain  # noqa: E402
from tfexplain import plots  # noqa: E402
from tfexplain.demo import demo_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model, x_train, x_test, names = demo_model()
    classes = ["malignant", "benign"]
    bg = tfexplain.background.kmeans(x_train, 30, seed=0)
    ks = tfexplain.KernelShap(model, bg, target="benign", feature_names=names, output_names=classes)
    exp = ks(x_test[:args.rows], seed=0)
    lime = tfexplain.Lime(model, x_train, feature_names=names, output_names=classes)
    row = int(np.argmin(np.abs(exp.model_output - 0.5)))    # the least certain row: bars of both signs
    lexp = lime(x_test[row:row + 1], seed=0)
    figures = {
        "bar": plots.bar(exp, max_display=10),
        "beeswarm": plots.beeswarm(exp, max_display=10),
        "waterfall": plots.waterfall(exp[row], max_display=10),
        "lime_bars": plots.lime_bars(lexp[0]),
    }
    for name, fig in figures.items():
        path = os.path.join(args.out, f"{name}.png")
        fig.savefig(path, dpi=72)
        print(f"{path}: {os.path.getsize(path) / 1024:.0f} kB")
    print(f"KernelShap of {len(exp)} rows against {len(bg.data)} k-means centroids: {exp.seconds:.1f} s; "
          f"waterfall / lime_bars of test row {row}, P(benign) = {exp.model_output[row]:.3f}")


if __name__ == "__main__":
    main()
