"""Every notebook in notebooks/ runs top to bottom, in a temporary working directory, within a timeout.

The notebooks are stored with their outputs; to refresh them after a change:
``python tests/test_notebooks.py --save`` (executes each one and writes it back)."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 180


def execute(path, workdir):
    """Runs the notebook at ``path`` with ``workdir`` as its working directory; returns it executed.
    The kernel imports tfexplain from this checkout."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    env_path = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    return nb


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "migrating_from_lime_shap.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_with_outputs_and_temporary_paths_only(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "store the notebook executed (python tests/test_notebooks.py --save)"
    assert all("ename" not in o for c in code for o in c.outputs), "a stored output is an error"
    source = "\n".join(c.source for c in code)
    assert "'/tmp" not in source and '"/tmp' not in source, "use tempfile, not a fixed /tmp path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = execute(path, tmp_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not any(o.get("output_type") == "error" for o in outputs)
    leftovers = [p for p in tmp_path.rglob("*")]
    assert all(str(p).startswith(str(tmp_path)) for p in leftovers)


_LOG_PREFIXES = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")


def without_native_logs(nb):
    """Drops TensorFlow's C++ start-up log lines (absl, not silenced by TF_CPP_MIN_LOG_LEVEL) from
    stderr outputs before a notebook is stored."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = [l for l in out["text"].splitlines(True) if not l.startswith(_LOG_PREFIXES)]
                if not "".join(lines).strip():
                    continue
                out["text"] = "".join(lines)
            kept.append(out)
        cell.outputs = kept
    return nb


if __name__ == "__main__" and "--save" in sys.argv:
    import tempfile

    import nbformat

    for nb_path in NOTEBOOKS:
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(without_native_logs(execute(nb_path, tmp)), nb_path)
        print("executed and saved", nb_path.name)
