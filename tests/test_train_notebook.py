"""`%mv_train` in a real kernel driven by nbclient, as nbconvert and nbval run a notebook.

No widget frontend there: what is saved is the text/plain and text/html of each output, so the
run's output must end up showing how the run ended, and nothing but ours may reach the cell.
"""
from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from test_training import TINY

TRAIN = ("%mv_train --data demo --model yolov8n.yaml --epochs 1 --imgsz 64 --batch 4 --device cpu "
         + " ".join(f"{k}={v}" for k, v in TINY.items()))


def execute(cells: list, cwd) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def shown(cell) -> str:
    """What a reader of the saved notebook sees of a cell: text/plain and text/html, streams."""
    parts = []
    for output in cell.outputs:
        data = output.get("data") or {}
        parts += [str(data.get("text/plain", "")), str(data.get("text/html", "")), str(output.get("text", ""))]
    return " ".join(parts)


def test_a_notebook_run_saves_its_final_state_and_nothing_else(ws, demo_data):
    ws.dataset_add("demo", demo_data)
    notebook = execute(["%load_ext nbversion",
                        f"waited = {TRAIN} --wait",
                        f"run = {TRAIN}\nrun",
                        "run.wait()\nprint(run.status)"], ws.root)
    outputs = [o for cell in notebook.cells for o in cell.outputs]
    assert [o.get("text") for o in outputs if o.get("name") == "stderr"] == []
    # an assigned run is still shown (IPython shows nothing for an assignment), and only it: the
    # run's commit (DVC adding the weights) drew no spinner (rich's Output widget) in the cell
    drawn = [o["data"] for o in notebook.cells[1].outputs if any(o.get("data", {}).values())]
    assert len(drawn) == 1 and "done, 1/1 epochs" in shown(notebook.cells[1]), drawn
    assert len(notebook.cells[2].outputs) == 1, notebook.cells[2].outputs
    assert shown(notebook.cells[3]).split() == ["done"]
    final = shown(notebook.cells[2])
    assert "done, 1/1 epochs" in final and "best epoch 1" in final, final
    assert "queued" not in final and "0/1" not in final, final
