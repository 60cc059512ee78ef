"""Command line: ``tfexplain explain | export | plot`` (also ``python -m tfexplain``).

    tfexplain explain MODEL DATA --background FILE --out FILE [--method kernel-shap|lime] [--target T]
                      [--n-samples N] [--seed S] [--batch-size B] [--kmeans K] [--progress | --quiet]
    tfexplain export MODEL --background FILE --out DIR [--method ...] [--target T] [--n-samples N]
    tfexplain plot RESULT --kind bar|beeswarm|waterfall|lime-bars [--row I] [--max-display K] --out PNG

MODEL is a Keras ``.keras`` file (loaded with ``safe_mode=True``) or a SavedModel directory; DATA and
the background are ``.csv`` (a header row of feature names), ``.npy`` (loaded with
``allow_pickle=False``) or ``.parquet`` (needs pyarrow). Results are ``.npz`` (numeric and unicode
arrays only: ``np.load(path)`` with its default ``allow_pickle=False``), ``.csv`` or ``.json``.
Errors are one line on stderr with exit status 2 (1 for an unexpected failure), no traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

DATA_FORMATS = (".csv", ".npy", ".parquet")
RESULT_FORMATS = (".npz", ".csv", ".json")


class CliError(Exception):
    """An error reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CliError(f"{message} (see {self.prog} --help)")


# ---- inputs -----------------------------------------------------------------------------------------
def read_table(path: str, what: str):
    """(float32 array [rows, d], feature names or None) from a .csv / .npy / .parquet file."""
    import numpy as np

    if not os.path.exists(path):
        raise CliError(f"{what} file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in DATA_FORMATS:
        raise CliError(f"{what} {path}: unsupported format {ext or '(none)'}; use one of {', '.join(DATA_FORMATS)}")
    try:
        if ext == ".npy":
            arr, names = np.load(path, allow_pickle=False), None
        elif ext == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise CliError(f"reading {path} needs pyarrow: pip install pyarrow (or use .csv / .npy)") from None
            table = pq.read_table(path)
            names = [str(c) for c in table.column_names]
            arr = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names])
        else:
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
            if not rows:
                raise CliError(f"{what} {path} is empty")
            names, body = [c.strip() for c in rows[0]], [r for r in rows[1:] if r]
            widths = {len(r) for r in body}
            if widths - {len(names)}:
                bad = next(i for i, r in enumerate(body) if len(r) != len(names))
                raise CliError(f"{what} {path}: line {bad + 2} has {len(body[bad])} fields but the header has "
                               f"{len(names)}")
            try:
                arr = np.array([[float(v) for v in r] for r in body], np.float64).reshape(len(body), len(names))
            except ValueError as err:
                raise CliError(f"{what} {path}: non-numeric value ({err})") from None
    except CliError:
        raise
    except Exception as err:  # noqa: BLE001
        raise CliError(f"cannot read {what} {path}: {_one_line(err)}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise CliError(f"{what} {path} must be a table [rows, features], got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise CliError(f"{what} {path} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32), names


def load_model(path: str):
    """A Keras model from a .keras file (safe_mode=True) or a callable from a SavedModel directory."""
    if not os.path.exists(path):
        raise CliError(f"model not found: {path}")
    try:
        if os.path.isdir(path):
            import tensorflow as tf

            if not tf.saved_model.contains_saved_model(path):
                raise CliError(f"{path} is a directory but not a SavedModel (no saved_model.pb)")
            loaded = tf.saved_model.load(path)
            for name in ("serve", "__call__"):
                fn = getattr(loaded, name, None)
                if fn is not None and hasattr(fn, "get_concrete_function"):
                    return loaded if name == "__call__" else fn
            if "serving_default" in loaded.signatures:
                sig = loaded.signatures["serving_default"]
                (key,) = list(sig.structured_input_signature[1])[:1] or [None]
                if key is None:
                    raise CliError(f"SavedModel {path}: serving_default takes no named input")
                return lambda x: sig(**{key: x})
            raise CliError(f"SavedModel {path} has no serve / __call__ function or serving_default signature")
        if not path.endswith((".keras", ".h5")):
            raise CliError(f"model {path}: expected a .keras file or a SavedModel directory")
        import keras

        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except CliError:
        raise
    except Exception as err:  # noqa: BLE001
        raise CliError(f"cannot load model {path}: {_one_line(err)}") from None


def _target(value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value   # an output name or "predicted"


def build_explainer(args, model, background, names):
    import tfexplain

    kw = {"feature_names": names, "batch_size": args.batch_size, "target": _target(args.target)}
    if args.output_names:
        kw["output_names"] = [s.strip() for s in args.output_names.split(",")]
    if args.n_samples is not None:
        kw["n_samples"] = args.n_samples
    if args.method == "kernel-shap":
        bg = background
        if args.kmeans:
            bg = tfexplain.background.kmeans(background, args.kmeans, seed=args.seed)
        return tfexplain.KernelShap(model, bg, **kw)
    return tfexplain.Lime(model, background, **kw)


def _one_line(err) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


# ---- outputs ----------------------------------------------------------------------------------------
_ARRAYS = ("values", "base_values", "data", "model_output", "n_evals", "stderr", "intercept", "score",
           "local_pred", "contributions", "target")


def save_result(exp, path: str) -> None:
    """Writes an Explanation as .npz (arrays + unicode names), .json (``to_json``) or .csv (one row per
    instance: base_value, model_output, then one value column per feature, ``output/feature`` for
    several outputs)."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower()
    if ext not in RESULT_FORMATS:
        raise CliError(f"--out {path}: unsupported format {ext or '(none)'}; use one of {', '.join(RESULT_FORMATS)}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CliError(f"--out {path}: directory {parent} does not exist")
    if ext == ".json":
        with open(path, "w") as fh:
            fh.write(exp.to_json())
    elif ext == ".npz":
        arrays = {k: np.asarray(getattr(exp, k)) for k in _ARRAYS if getattr(exp, k) is not None}
        arrays.update(feature_names=np.array(exp.feature_names, dtype=str),
                      output_names=np.array(exp.output_names, dtype=str),
                      method=np.array(exp.method), seconds=np.array(exp.seconds))
        np.savez(path, **arrays)
    else:
        v = np.asarray(exp.values)
        n = len(v)
        if v.ndim == 2:
            cols, flat = list(exp.feature_names), v
        else:
            outs = exp.axis_names(v.shape[2])
            cols = [f"{o}/{f}" for o in outs for f in exp.feature_names]
            flat = v.transpose(0, 2, 1).reshape(n, -1)
        base = np.asarray(exp.base_values).reshape(n, -1)
        fx = np.asarray(exp.model_output).reshape(n, -1)
        head = [f"base_value{'' if base.shape[1] == 1 else f'/{k}'}" for k in range(base.shape[1])]
        head += [f"model_output{'' if fx.shape[1] == 1 else f'/{k}'}" for k in range(fx.shape[1])]
        target = [] if exp.target is None else np.asarray(exp.target).reshape(n, -1)
        if exp.target is not None:
            head += [f"target{'' if target.shape[1] == 1 else f'/{k}'}" for k in range(target.shape[1])]
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(head + cols)
            for i in range(n):
                row = [repr(float(b)) for b in base[i]] + [repr(float(f)) for f in fx[i]]
                if exp.target is not None:
                    row += [str(int(t)) for t in target[i]]
                w.writerow(row + [repr(float(x)) for x in flat[i]])


def load_result(path: str):
    """An Explanation from a .npz or .json written by ``tfexplain explain``."""
    import numpy as np

    from .explanation import Explanation

    if not os.path.exists(path):
        raise CliError(f"result file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".json":
            with open(path) as fh:
                return Explanation.from_dict(json.load(fh))
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            d["feature_names"] = d["feature_names"].tolist()
            d["output_names"] = d["output_names"].tolist()
            d["method"] = str(d["method"])
            d["seconds"] = float(d.get("seconds", 0.0))
            return Explanation.from_dict(d)
    except Exception as err:  # noqa: BLE001
        raise CliError(f"cannot read result {path}: {_one_line(err)}") from None
    raise CliError(f"result {path}: unsupported format {ext or '(none)'}; plot reads .npz or .json "
                   "(as written by `tfexplain explain`)")


# ---- commands ---------------------------------------------------------------------------------------
def _explainer_from_args(args):
    model = load_model(args.model)
    background, bg_names = read_table(args.background, "background")
    return model, background, bg_names


def cmd_explain(args) -> int:
    x, names = read_table(args.data, "DATA")
    model, background, bg_names = _explainer_from_args(args)
    if names and bg_names and names != bg_names:
        raise CliError(f"DATA's columns {names} differ from the background's {bg_names}")
    if x.shape[1] != background.shape[1]:
        raise CliError(f"DATA has {x.shape[1]} features (columns) but the background has {background.shape[1]}")
    explainer = build_explainer(args, model, background, names or bg_names)
    verbose = 0 if args.quiet else (1 if args.progress else "auto")
    exp = explainer(x, seed=args.seed, verbose=verbose)
    save_result(exp, args.out)
    if not args.quiet:
        print(f"{exp.method}: {len(exp)} rows x {exp.values.shape[1]} features in {exp.seconds:.2f} s -> {args.out}")
    return 0


def cmd_export(args) -> int:
    import tfexplain

    model, background, names = _explainer_from_args(args)
    explainer = build_explainer(args, model, background, names)
    try:
        tfexplain.export(explainer, args.out, jit_compile=args.jit, overwrite=args.overwrite)
    except FileExistsError as err:
        raise CliError(str(err).replace("pass overwrite=True", "pass --overwrite")) from None
    if not args.quiet:
        print(f"exported {explainer.method} ({explainer.n_features} features) -> {args.out}")
    return 0


def cmd_plot(args) -> int:
    exp = load_result(args.result)
    try:
        import matplotlib
    except ImportError:
        raise CliError("plotting needs matplotlib: pip install 'tfexplain[plots]'") from None
    matplotlib.use("Agg")
    from . import plots

    if args.row is not None and not 0 <= args.row < len(exp):
        raise CliError(f"--row {args.row} is out of range: the result has {len(exp)} rows")
    row = args.row or 0
    if args.kind == "bar":
        fig = plots.bar(exp, max_display=args.max_display)
    elif args.kind == "beeswarm":
        fig = plots.beeswarm(exp, max_display=args.max_display)
    elif args.kind == "waterfall":
        fig = plots.waterfall(exp[row], max_display=args.max_display)
    else:
        fig = plots.lime_bars(exp[row], max_display=args.max_display)
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise CliError(f"--out {args.out}: directory {parent} does not exist")
    fig.savefig(args.out, dpi=args.dpi)
    if not args.quiet:
        print(f"{args.kind} plot -> {args.out}")
    return 0


def _explainer_options(p):
    p.add_argument("model", metavar="MODEL", help="a .keras file or a SavedModel directory")
    p.add_argument("--background", required=True, metavar="FILE",
                   help="background rows (kernel-shap) or training data (lime): .csv, .npy or .parquet")
    p.add_argument("--method", choices=["kernel-shap", "lime"], default="kernel-shap", help="default: kernel-shap")
    p.add_argument("--target", help="output index, output name (with --output-names) or 'predicted'; "
                                    "default: every output (kernel-shap), the predicted class (lime)")
    p.add_argument("--output-names", metavar="A,B,...", help="comma-separated names of the model's outputs")
    p.add_argument("--n-samples", type=int, metavar="N", help="coalitions (kernel-shap) or perturbations (lime)")
    p.add_argument("--batch-size", type=int, default=2**17, metavar="ROWS",
                   help="most model-input rows evaluated at once (default 131072)")
    p.add_argument("--kmeans", type=int, metavar="K", help="kernel-shap: summarize the background to K "
                                                           "weighted k-means centroids")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfexplain", description="KernelSHAP and LIME explanations of TensorFlow / Keras models.")
    sub = parser.add_subparsers(dest="command", metavar="{explain,export,plot}", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser("explain", help="explain the rows of a data file")
    _explainer_options(p)
    p.add_argument("data", metavar="DATA", help="rows to explain: .csv (header = feature names), .npy or .parquet")
    p.add_argument("--out", required=True, metavar="FILE", help="result: .npz, .csv or .json")
    p.add_argument("--progress", action="store_true", help="always show a progress bar (default: on long runs)")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("export", help="export the model and its explain signature as a SavedModel")
    _explainer_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="SavedModel directory to write")
    p.add_argument("--jit", action="store_true", help="XLA-compile the explain function")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("plot", help="plot a result written by `tfexplain explain`")
    p.add_argument("result", metavar="RESULT", help=".npz or .json result")
    p.add_argument("--kind", choices=["bar", "beeswarm", "waterfall", "lime-bars"], default="bar")
    p.add_argument("--row", type=int, help="instance for waterfall / lime-bars (default 0)")
    p.add_argument("--max-display", type=int, default=10, metavar="K", help="most features shown (default 10)")
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--out", required=True, metavar="PNG", help="image file (.png, .svg, .pdf)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv=None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 error, 1 unexpected failure)."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "n_samples", None) is not None and args.n_samples < 1:
            raise CliError(f"--n-samples must be positive, got {args.n_samples}")
        # usage errors found, now the work (this imports TensorFlow)
        return args.func(args)
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except CliError as err:
        print(f"tfexplain: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, ImportError, OSError, KeyError) as err:
        print(f"tfexplain: error: {_one_line(err).split(': ', 1)[-1]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfexplain: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- no tracebacks on the command line
        print(f"tfexplain: unexpected error: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
