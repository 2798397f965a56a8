"""`predict` on Ultralytics' own sample images (bus.jpg, zidane.jpg) with a freshly trained run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli
from nbversion.errors import InvalidInput, NotFound

TINY = {"nbs": 4, "warmup_epochs": 0, "optimizer": "AdamW", "lr0": 0.003, "mosaic": 0, "plots": False}


@pytest.fixture
def assets():
    import ultralytics
    folder = Path(ultralytics.__file__).parent / "assets"
    return [folder / "bus.jpg", folder / "zidane.jpg"]


@pytest.fixture
def trained(ws, demo_data):
    ws.dataset_add("demo", demo_data)
    return ws.train("demo", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", extra=TINY, wait=True)


def test_predict_with_a_run_api_cli_and_magic(ws, trained, assets, tmp_path):
    result = ws.predict(trained.run_id, assets, conf=0.001, imgsz=64, save=str(tmp_path / "annotated"))
    assert [Path(i["image"]).name for i in result.images] == ["bus.jpg", "zidane.jpg"]
    assert all(i["ms"] > 0 for i in result.images)            # inference time per image
    for box in (b for i in result.images for b in i["boxes"]):
        assert box["class"] in ("red", "green", "blue") and 0 <= box["confidence"] <= 1 and len(box["box"]) == 4
    html = result._repr_html_()
    assert html.count("<img") == 2 and "bus.jpg" in html      # the images with boxes drawn
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["bus.png", "zidane.png"]
    assert "bus.jpg" in result.summary() and " ms" in result.summary()

    out = json.loads(cli("predict", trained.run_id, *assets, "--imgsz", "64", "--json", check=0).stdout)
    assert out["weights"].endswith("weights/best.pt") and len(out["images"]) == 2

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        r = shell.run_cell(f"%mv_predict {trained.run_id} {assets[0]} --conf 0.5 --imgsz 64")
        assert r.success and len(r.result.images) == 1 and "<img" in r.result._repr_html_()
    finally:
        InteractiveShell.clear_instance()


def test_two_images_of_the_same_name_are_both_saved_and_told_apart(ws, trained, assets, tmp_path):
    import shutil

    for folder, source in (("a", assets[0]), ("b", assets[1])):   # a/img.jpg is a bus, b/img.jpg is not
        (tmp_path / folder).mkdir()
        shutil.copy(source, tmp_path / folder / "img.jpg")
    result = ws.predict(trained.run_id, [tmp_path / "a" / "img.jpg", tmp_path / "b" / "img.jpg"], conf=0.001,
                        imgsz=64, save=str(tmp_path / "annotated"))
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["a_img.png", "b_img.png"]
    assert "a/img.jpg" in result.summary() and "b/img.jpg" in result.summary()
    assert {row[0] for row in result.table()[1]} <= {"a/img.jpg", "b/img.jpg"}


def test_a_run_that_failed_before_saving_weights_says_so_not_wait(ws, trained, assets):
    from nbversion.errors import NotFound

    def crash(trainer):
        raise RuntimeError("broken before the first epoch")

    failed = ws.train("demo", "yolov8n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", extra=TINY, wait=True,
                      callbacks={"on_train_start": crash})
    with pytest.raises(NotFound, match="ended \\(failed\\) without saving weights") as caught:
        ws.predict(failed.run_id, assets[:1], imgsz=64)
    assert "wait" not in caught.value.hint


def test_predict_with_a_weights_file(ws, trained, assets):
    best = ws.root / trained.record["weights"]["best"]
    assert ws.predict(str(best), assets[:1], imgsz=64).weights == str(best)


def test_missing_or_unreadable_images_and_bad_refs_are_clear_errors(ws, trained, assets, tmp_path):
    with pytest.raises(NotFound, match="nope.jpg: no such image"):
        ws.predict(trained.run_id, [str(tmp_path / "nope.jpg")])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(InvalidInput, match="broken.jpg: not a readable image"):
        ws.predict(trained.run_id, [broken])
    with pytest.raises(NotFound, match="is not a run, a weights file or a registry ref"):
        ws.predict("no-such-run", assets)
    proc = cli("predict", trained.run_id, str(tmp_path / "nope.jpg"))
    assert proc.returncode == 1 and "error:" in proc.stderr and "hint:" in proc.stderr
