"""Dataset insight (issue 18, part 6): `dataset show` statistics, `dataset remove` / `log`,
`dataset add --classes` (and classes.txt), the extension allow-list with `--strict`."""
import json
import statistics
from collections import Counter
from pathlib import Path

import pytest
import tomli_w
import tomllib

from nbversion.demo import edit_labels, make_dataset, write_label
from nbversion.errors import InvalidInput, NotFound, UncommittedChanges, UsageError

from conftest import cli, cli_json, git, snapshot
from test_datasets import add_images
from test_models import make_weights


def expected_from_files(folder: Path) -> dict:
    """What the statistics must say, computed here from the label files the demo wrote."""
    expected = {}
    names = ["red", "green", "blue"]
    for split in ("train", "val"):
        boxes, images_with, widths, without = Counter(), Counter(), [], 0
        images = sorted((folder / "images" / split).glob("*.png"))
        for image in images:
            label = folder / "labels" / split / f"{image.stem}.txt"
            lines = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.exists() else []
            without += not lines
            for cls in {int(parts[0]) for parts in lines}:
                images_with[names[cls]] += 1
            for parts in lines:
                boxes[names[int(parts[0])]] += 1
                widths.append(float(parts[3]))
        expected[split] = {"images": len(images), "without": without, "widths": widths,
                           "classes": [{"class": n, "boxes": boxes[n], "images": images_with[n]} for n in names]}
    return expected


def check_stats(stats: dict, folder: Path) -> None:
    for split, want in expected_from_files(folder).items():
        got = stats["splits"][split]
        assert got["images"] == want["images"] and got["images_without_boxes"] == want["without"]
        assert got["classes"] == want["classes"]
        assert got["boxes"] == len(want["widths"])
        assert got["box_width"]["median"] == pytest.approx(statistics.median(want["widths"]), abs=1e-6)
        assert got["box_width"]["min"] == pytest.approx(min(want["widths"]), abs=1e-6)
        for key in ("box_width", "box_height", "box_area", "aspect_ratio", "box_width_px", "box_height_px"):
            hist = got[key]
            assert len(hist["edges"]) == len(hist["counts"]) + 1 and sum(hist["counts"]) == got["boxes"], key
        assert sum(got["image_sizes"].values()) == got["images"] and set(got["image_sizes"]) == {"64x64"}


def test_show_statistics_match_the_label_files_in_json_text_and_metadata(ws, demo_data):
    (demo_data / "labels/train/train_00003.txt").write_text("")   # an image with no box
    cli("dataset", "add", "shapes", demo_data, check=0)
    shown = cli_json("dataset", "show", "shapes")
    check_stats(shown["stats"], demo_data)
    assert shown["stats"]["splits"]["train"]["images_without_boxes"] == 1
    stored = (ws.root / "datasets/shapes.meta.json").read_text()
    assert json.loads(stored)["stats"] == shown["stats"] and len(stored) < 20_000   # histograms, not lists
    text = cli("dataset", "show", "shapes", check=0).stdout
    header = next(line for line in text.splitlines() if line.startswith("split"))
    assert header.split()[:5] == ["split", "class", "boxes", "share", "images"]
    assert "train: 16 images (1 without boxes)" in text and "image sizes 64x64 (16)" in text


def test_notebook_view_draws_one_statistics_figure(ws, demo_data):
    pytest.importorskip("matplotlib")   # in the yolo extra; the dev venv has it
    ws.dataset_add("shapes", demo_data)
    page = ws.dataset_show("shapes", samples=0)._repr_html_()
    assert page.count("alt='dataset statistics'") == 1 and "data:image/png;base64," in page


def test_notebook_view_without_matplotlib_shows_the_numbers_as_tables(ws, demo_data, monkeypatch):
    import sys

    ws.dataset_add("shapes", demo_data)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # as without the yolo extra: import fails
    page = ws.dataset_show("shapes", samples=0)._repr_html_()
    assert "dataset statistics" not in page and "box width (normalised)" in page and "64x64: 16" in page


def test_show_of_an_older_version_gives_that_versions_numbers(ws, demo_data):
    ws.dataset_add("shapes", demo_data, tags=["v1"])
    add_images(demo_data, 3)
    ws.dataset_add("shapes", demo_data, tags=["v2"])
    assert ws.dataset_show("shapes@v1").stats["splits"]["train"]["images"] == 16
    check_stats(ws.dataset_show("shapes@v1").stats, make_dataset(ws.root.parent / "v1-copy"))   # same seed: v1
    assert ws.dataset_show("shapes").stats["splits"]["train"]["images"] == 19
    check_stats(ws.dataset_show("shapes@v2").stats, demo_data)


def test_statistics_of_a_version_from_its_files_equal_those_kept_at_import(ws, demo_data):
    """Versions imported before the statistics existed get them computed from their files
    (working copy where the md5s match, else the DVC cache): the same numbers."""
    from nbversion.core.artifacts import dataset_meta
    from nbversion.core.artifacts.dataset_stats_backfill import compute

    ws.dataset_add("shapes", demo_data, tags=["v1"])
    add_images(demo_data, 2, split="val")
    ws.dataset_add("shapes", demo_data)
    for rev in ("v1", "latest"):
        shown = ws.dataset_show(f"shapes@{rev}")
        meta = dataset_meta.read_at(ws.root, "datasets", "shapes", shown.commit)
        assert compute(ws.root, "shapes", shown.commit, meta) == meta["stats"]


def test_commit_of_edits_in_place_refreshes_the_statistics(ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    folder = ws.root / "datasets/shapes"
    write_label(folder / "labels/train/train_00000.txt", ["0 0.5 0.5 0.9 0.9", "0 0.5 0.5 0.2 0.2"])
    edit_labels(folder, count=2, split="val")
    cli("commit", "-m", "relabel", check=0)
    check_stats(cli_json("dataset", "show", "shapes")["stats"], folder)


def test_remove_keeps_history_tags_and_lineage_and_the_name_can_come_back(ws, demo_data, tmp_path):
    ws.dataset_add("shapes", demo_data, tags=["v1"])
    model = ws.model_add("det", make_weights(tmp_path / "w")["model.onnx"], dataset="shapes@v1")
    before = snapshot(ws.root)
    dry = cli("dataset", "remove", "shapes", "--dry-run", check=0).stdout
    assert "datasets/shapes.dvc" in dry and "nothing was changed" in dry and snapshot(ws.root) == before
    removed = cli_json("dataset", "remove", "shapes")
    assert removed["paths"] == ["datasets/shapes", "datasets/shapes.dvc", "datasets/shapes.meta.json"]
    assert not (ws.root / "datasets/shapes").exists() and git(ws.root, "status", "--porcelain") == ""
    assert cli_json("dataset", "list")["datasets"] == []
    audit = json.loads((ws.root / ".nbversion/audit.jsonl").read_text().splitlines()[-1])
    assert audit["action"] == "dataset remove" and audit["target"] == "shapes"
    log = cli_json("dataset", "log", "shapes")["entries"]
    assert [e["event"] for e in log] == ["removed", "version"] and log[1]["tags"] == ["v1"]
    assert "dataset/shapes/v1" in git(ws.root, "tag")
    assert ws.dataset_show("shapes@v1").stats["splits"]["train"]["images"] == 16
    with pytest.raises(NotFound, match="was removed"):
        ws.dataset_show("shapes")
    lineage = model.meta["lineage"]["dataset"]
    assert ws.model_show("det").meta["lineage"]["dataset"] == lineage and lineage["commit"] == log[1]["commit"]
    cli("checkout", "dataset/shapes/v1", "--", "datasets/shapes", check=0)
    assert (ws.root / "datasets/shapes/images/train/train_00000.png").exists()
    cli("commit", "-m", "shapes back at v1", check=0)
    listed = ws.dataset_list().datasets
    assert [d["name"] for d in listed] == ["shapes"] and listed[0]["versions"] == 2   # a removal is no version
    ws.dataset_remove("shapes")
    refused = cli("checkout", "HEAD", "--", "datasets/shapes", "--force")   # HEAD has no such path
    assert refused.returncode != 0 and "datasets/shapes is not in HEAD" in refused.stderr
    assert "pathspec" not in refused.stderr and "Traceback" not in refused.stderr
    again = ws.dataset_add("shapes", demo_data)   # a removed name can be added again
    assert again.changed and [d["name"] for d in ws.dataset_list().datasets] == ["shapes"]


def test_remove_refuses_uncommitted_edits_unless_forced(ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    add_images(ws.root / "datasets/shapes", 1)
    before = snapshot(ws.root)
    with pytest.raises(UncommittedChanges, match="never committed"):
        ws.dataset_remove("shapes")
    assert snapshot(ws.root) == before
    assert cli("dataset", "remove", "shapes").returncode == 1
    assert ws.dataset_remove("shapes", force=True).commit
    with pytest.raises(NotFound):
        ws.dataset_remove("shapes")


def cli_json_rc(*args):
    """--json output of a command that exits 1 (a dry run that would be refused)."""
    proc = cli(*args, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _without_yaml(folder: Path) -> Path:
    (folder / "data.yaml").unlink()
    return folder


def test_classes_txt_is_read_and_classes_flag_names_a_folder_without_one(ws, demo_data, tmp_path):
    plain = _without_yaml(demo_data)
    added = cli_json("dataset", "add", "shapes", plain, "--classes", "red,green,blue")
    assert added["classes"] == ["red", "green", "blue"] and added["format"] == "yolo"
    assert "2: blue" in (ws.root / "datasets/shapes/data.yaml").read_text()
    listed = _without_yaml(make_dataset(tmp_path / "listed"))
    (listed / "classes.txt").write_text("red\ngreen\nblue\n")
    assert ws.dataset_add("listed", listed).classes == ["red", "green", "blue"]
    with pytest.raises(UsageError, match="disagrees with classes.txt"):
        ws.dataset_add("other", listed, classes="a,b,c")
    with pytest.raises(UsageError, match="disagrees with data.yaml"):
        ws.dataset_add("other", make_dataset(tmp_path / "yaml"), classes="a,b,c")


def test_a_flat_images_folder_is_checked_once_and_trains_on_the_same_images_for_val(ws, demo_data, tmp_path):
    import shutil

    flat = tmp_path / "flat"
    for kind in ("images", "labels"):
        shutil.copytree(demo_data / kind / "train", flat / kind)
    (flat / "classes.txt").write_text("red\ngreen\nblue\n")
    added = cli_json("dataset", "add", "flat", flat)
    assert not [w for w in added.get("warnings", []) if "duplicate" in str(w)], added.get("warnings")
    data_yaml = (ws.root / "datasets/flat/data.yaml").read_text()
    assert "train: images" in data_yaml and "val: images" in data_yaml
    (flat / "classes.txt").write_text("red\ngreen\n")            # class 2 now out of range: each error once
    refused = cli("dataset", "add", "flat2", flat)
    errors = [line for line in refused.stderr.splitlines() if "outside `names`" in line]
    assert errors and len(errors) == len(set(errors)), refused.stderr


def test_a_yolo_folder_without_class_names_is_refused_not_imported_as_plain_files(ws, demo_data):
    plain = _without_yaml(demo_data)
    before = snapshot(ws.root)
    refused = cli("dataset", "add", "parts", plain)
    assert refused.returncode == 1 and "no data.yaml or classes.txt" in refused.stderr
    assert "--classes" in refused.stderr and snapshot(ws.root) == before


def test_a_class_id_past_the_given_names_is_an_error_naming_file_and_line(ws, demo_data):
    plain = _without_yaml(demo_data)
    before = snapshot(ws.root)
    proc = cli("dataset", "add", "shapes", plain, "--classes", "red,green")
    assert proc.returncode == 1 and snapshot(ws.root) == before
    bad = next(p for p in sorted((plain / "labels/train").glob("*.txt"))
               if any(line.startswith("2 ") for line in p.read_text().splitlines()))
    line = 1 + [line.split()[0] for line in bad.read_text().splitlines()].index("2")
    assert f"labels/train/{bad.name}:{line}: class id 2 is outside `names` (0..1)" in proc.stderr + proc.stdout


def test_unexpected_files_are_warned_refused_with_strict_and_configurable(ws, demo_data):
    (demo_data / "run.sh").write_text("echo hi\n")
    (demo_data / "images/train/evil.exe").write_bytes(b"MZ")
    before = snapshot(ws.root)
    dry = cli_json_rc("dataset", "add", "shapes", demo_data, "--strict", "--dry-run")
    assert {e["file"] for e in dry["errors"]} == {"run.sh", "images/train/evil.exe"}
    strict = cli("dataset", "add", "shapes", demo_data, "--strict")
    assert strict.returncode == 1 and "run.sh" in strict.stderr and "images/train/evil.exe" in strict.stderr
    assert snapshot(ws.root) == before
    with pytest.raises(InvalidInput, match="--strict"):
        ws.dataset_add("shapes", demo_data, strict=True)
    warned = cli("dataset", "add", "shapes", demo_data)
    assert warned.returncode == 0 and "run.sh" in warned.stdout and "evil.exe" in warned.stdout
    warnings = {w["file"] for w in ws.dataset_show("shapes").meta["warnings"]}
    assert {"run.sh", "images/train/evil.exe"} <= warnings
    config = ws.root / ".nbversion/config.toml"
    settings = tomllib.loads(config.read_text())
    assert "png" in settings["datasets"]["allowed_extensions"]   # Ultralytics' image formats, written at init
    settings["datasets"]["allowed_extensions"] = ["png", "sh", ".EXE"]
    config.write_text(tomli_w.dumps(settings))
    cli("commit", "-m", "allow scripts", check=0)
    assert ws.dataset_add("again", demo_data, strict=True).changed


def test_a_viewer_cannot_remove_a_dataset(ws, demo_data, monkeypatch):
    from nbversion.errors import PermissionDenied

    ws.dataset_add("shapes", demo_data)
    ws.user_add("viewer@example.com", "viewer")
    monkeypatch.setenv("NBVERSION_USER", "viewer@example.com")
    with pytest.raises(PermissionDenied, match="contributor"):
        ws.dataset_remove("shapes")
    assert (ws.root / "datasets/shapes.meta.json").exists()
    assert [d["name"] for d in ws.dataset_list().datasets] == ["shapes"]


def test_a_wrong_allowed_extensions_setting_names_the_file_and_line(ws, demo_data):
    config = ws.root / ".nbversion/config.toml"
    settings = tomllib.loads(config.read_text())
    settings["datasets"]["allowed_extensions"] = "png"
    config.write_text(tomli_w.dumps(settings))
    proc = cli("dataset", "add", "shapes", demo_data)
    assert proc.returncode == 1 and ".nbversion/config.toml:" in proc.stderr and "allowed_extensions" in proc.stderr
