"""Predictions remembered: `predict` records each call (git-ignored), `--record` commits one,
`predict history` lists them, `predict compare V1 V2 IMAGE...` pairs two versions' boxes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, cli_json, git, snapshot
from nbversion.errors import InvalidInput, NotFound, UsageError
from trained import trained, trained_template   # noqa: F401 (fixtures)

ASSETS = Path(__import__("ultralytics").__file__).parent / "assets"
BUS, ZIDANE = ASSETS / "bus.jpg", ASSETS / "zidane.jpg"


def test_predict_keeps_a_record_out_of_git_and_history_lists_it(trained):
    ws, run_id = trained
    head = git(ws.root, "rev-parse", "HEAD")
    result = ws.predict(run_id, [BUS, ZIDANE], conf=0.001, imgsz=64)
    assert result.record and not result.committed and result.record in result.summary()

    assert ws.status().clean                                  # nothing for a later commit to pick up
    assert git(ws.root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(ws.root, "rev-parse", "HEAD") == head

    (entry,) = ws.predict_history().records
    assert entry["id"] == result.record and entry["recorded"] is False
    assert entry["model"]["ref"] == run_id and entry["model"]["kind"] == "run" and len(entry["model"]["md5"]) == 32
    assert (entry["conf"], entry["iou"], entry["imgsz"]) == (0.001, 0.7, 64)
    bus = entry["images"][0]
    assert bus["name"] == "bus.jpg" and (bus["width"], bus["height"]) == (810, 1080) and len(bus["md5"]) == 32
    assert bus["ms"] > 0 and bus["detections"] and bus["detections"] == result.images[0]["boxes"]
    for box in bus["detections"]:
        x1, y1, x2, y2 = box["box"]
        assert box["centre"] == [round((x1 + x2) / 2, 2), round((y1 + y2) / 2, 2)]
        assert box["area"] == pytest.approx((x2 - x1) * (y2 - y1), abs=0.1)

    cli("commit", "-m", "after a prediction")                  # a commit finds nothing to record
    assert git(ws.root, "rev-parse", "HEAD") == head


def test_record_commits_it_with_an_audit_entry_and_no_history_keeps_nothing(trained):
    ws, run_id = trained
    before = git(ws.root, "rev-parse", "HEAD")
    out = cli_json("predict", run_id, BUS, "--imgsz", "64", "--record")
    assert out["committed"] and out["record"]
    assert git(ws.root, "rev-parse", "HEAD^") == before          # one new commit holds it
    assert f".nbversion/predictions/{out['record']}.json" in git(ws.root, "show", "--name-only", "HEAD")
    assert ws.status().clean
    (audited,) = [e for _, e in ws.audit(action="predict").entries]
    assert out["record"] in audited["target"] and audited["details"]["model"] == run_id

    quiet = snapshot(ws.root)
    assert ws.predict(run_id, [BUS], imgsz=64, history=False).record == "" and snapshot(ws.root) == quiet
    (entry,) = ws.predict_history().records
    assert entry["id"] == out["record"] and entry["recorded"] is True
    assert "committed" in cli("predict", "history", check=0).stdout


def test_history_lists_newest_first_and_filters_by_model_and_number(trained):
    ws, run_id = trained
    best = str(ws.root / "runs" / run_id / "weights" / "best.pt")
    ids = [ws.predict(run_id, [BUS], imgsz=64).record, ws.predict(best, [ZIDANE], imgsz=64).record,
           ws.predict(run_id, [BUS, ZIDANE], imgsz=64).record]
    listed = cli_json("predict", "history")["records"]
    assert [r["id"] for r in listed] == ids[::-1]
    assert [r["id"] for r in cli_json("predict", "history", "-n", "2")["records"]] == ids[:0:-1]
    assert [r["id"] for r in ws.predict_history(model=run_id).records] == [ids[2], ids[0]]
    table = cli("predict", "history", check=0).stdout
    assert ids[0] in table and "bus.jpg" not in table and run_id in table

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        r = shell.run_cell("%mv_predict history -n 1")
        assert r.success and [x["id"] for x in r.result.records] == [ids[2]]
    finally:
        InteractiveShell.clear_instance()


def test_compare_two_registry_versions_pairs_boxes_per_image(trained):
    ws, run_id = trained
    ws.register("det", version="1.0.0", source=run_id)
    ws.register("det", bump="patch", source=str(ws.root / "runs" / run_id / "weights" / "last.pt"))
    out = cli_json("predict", "compare", "det@v1.0.0", "det@v1.0.1", BUS, ZIDANE, "--conf", "0.001",
                   "--imgsz", "64")
    assert [Path(i["image"]).name for i in out["images"]] == ["bus.jpg", "zidane.jpg"]
    assert out["first"]["version"] == "v1.0.0" and out["second"]["version"] == "v1.0.1"
    for image in out["images"]:
        assert image["paired"] + image["only_first"] == len(image["first"])
        assert image["paired"] + image["only_second"] == len(image["second"])
    totals = out["totals"]
    assert totals["paired"] == sum(i["paired"] for i in out["images"])

    same = ws.predict_compare("det@v1.0.0", "det@v1.0.0", [BUS], conf=0.001, imgsz=64)
    (image,) = same.images                                     # a version against itself: every box paired
    assert image["only_first"] == image["only_second"] == 0 and image["paired"] == len(image["first"]) > 0
    assert image["mean_confidence_change"] == 0.0 and image["mean_iou"] == 1.0
    html = same._repr_html_()
    assert html.count("<img") == 2 and "V1 det@v1.0.0" in html and "V2 det@v1.0.0" in html
    text = cli("predict", "compare", "det@v1.0.0", "det@v1.0.1", BUS, "--conf", "0.001", "--imgsz", "64",
               check=0).stdout
    assert "only V1" in text and "bus.jpg" in text and "V1 det@v1.0.0 vs V2 det@v1.0.1" in text


def test_bad_refs_images_and_words_are_clear_errors_and_write_no_record(trained, tmp_path):
    ws, run_id = trained
    before = snapshot(ws.root)
    with pytest.raises(NotFound, match="nope.jpg: no such image"):
        ws.predict(run_id, [tmp_path / "nope.jpg"])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(InvalidInput, match="broken.jpg: not a readable image"):
        ws.predict_compare(run_id, run_id, [broken])
    with pytest.raises(NotFound, match="is not a run, a weights file or a registry ref"):
        ws.predict_compare(run_id, "no-such-run", [BUS])
    with pytest.raises(UsageError, match="needs images"):
        ws.predict_compare(run_id, run_id, [])
    for argv, message in [(["predict", "history", BUS], "takes no images"),
                          (["predict", "compare", run_id, BUS], "two models and at least one image"),
                          (["predict", run_id, BUS, "-n", "2"], "options of `predict history`"),
                          (["predict", run_id], "at least one image"),
                          (["predict", "history", "--record"], "not of `predict history`")]:
        proc = cli(*argv)
        assert proc.returncode != 0 and message in proc.stderr and "hint:" in proc.stderr, proc.stderr
    assert ws.predict_history().records == [] and snapshot(ws.root) == before


def test_a_model_named_history_is_reached_as_history_at_a_version(trained):
    ws, run_id = trained
    ws.register("history", version="1.0.0", source=run_id)
    out = json.loads(cli("predict", "history@v1.0.0", BUS, "--imgsz", "64", "--json", check=0).stdout)
    assert out["model"] == "history@v1.0.0" and out["record"]
    (entry,) = cli_json("predict", "history")["records"]         # the word itself still lists the records
    assert entry["model"]["version"] == "v1.0.0"


def test_show_gives_one_record_in_full_and_draws_the_images_still_there(trained, tmp_path):
    import shutil

    ws, run_id = trained
    copy = tmp_path / "street.jpg"
    shutil.copyfile(ZIDANE, copy)
    made = ws.predict(run_id, [BUS, copy], conf=0.001, imgsz=64)
    (recorded,) = ws.predict_history().records

    shown = cli_json("predict", "show", made.record)
    assert shown["id"] == made.record and shown["model"]["ref"] == run_id
    assert [(i["name"], i["state"]) for i in shown["images"]] == [("bus.jpg", "here"), ("street.jpg", "here")]
    assert [i["detections"] for i in shown["images"]] == [i["detections"] for i in recorded["images"]]
    text = cli("predict", "show", made.record[:20], check=0).stdout      # the start of an id is enough
    assert f"model {run_id}" in text and "street.jpg" in text and "conf 0.001" in text
    assert len([line for line in text.splitlines() if line.startswith("bus.jpg")]) == len(recorded["images"][0]["detections"])

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        drawn = shell.run_cell(f"%mv_predict show {made.record}")
        assert drawn.success and drawn.result._repr_html_().count("<img") == 2

        copy.write_bytes(BUS.read_bytes())                   # another picture under the same name
        changed = ws.predict_show(made.record)
        assert changed.states == ["here", "changed"] and "street.jpg: changed since" in changed.summary()
        copy.unlink()
        moved = ws.predict_show(made.record)
        html = moved._repr_html_()
        assert moved.states == ["here", "moved"] and html.count("<img") == 1 and "street.jpg: moved since" in html
        assert [i["state"] for i in cli_json("predict", "show", made.record)["images"]] == ["here", "moved"]
    finally:
        InteractiveShell.clear_instance()


def test_show_of_an_unknown_or_missing_id_is_a_clear_error(trained):
    ws, run_id = trained
    with pytest.raises(NotFound, match="no-such-id: no such prediction record"):
        ws.predict_show("no-such-id")
    for argv, message in [(["predict", "show"], "takes one record id"),
                          (["predict", "show", "nope"], "no such prediction record"),
                          (["predict", "show", "nope", "--record"], "not of `predict show`")]:
        proc = cli(*argv)
        assert proc.returncode != 0 and message in proc.stderr and "hint:" in proc.stderr, proc.stderr
