"""Bad datasets and unsafe archives are refused before anything is written.

Each test checks the message names the file (and line), and that git status, HEAD, tags,
the audit log and the DVC cache are exactly as before.
"""
import json
import stat
import zipfile
from pathlib import Path

import pytest

from nbversion.errors import InvalidInput

from conftest import cli, snapshot


@pytest.fixture
def ready(ws, demo_data):
    """A workspace with one dataset already imported (so the cache is not empty) and a fresh source."""
    ws.dataset_add("existing", demo_data)
    return ws, demo_data, snapshot(ws.root)


def refused(ws, src, before, *expected):
    with pytest.raises(InvalidInput) as info:
        ws.dataset_add("shapes", src)
    message = info.value.message
    for text in expected:
        assert text in message, message
    assert snapshot(ws.root) == before
    assert not (ws.root / "datasets" / "shapes").exists()
    assert not list((ws.root / ".nbversion" / "tmp").glob("import-*"))
    return info.value


def set_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def add_line(path: Path, text: str) -> int:
    lines = path.read_text().splitlines() + [text]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def test_label_line_without_five_numbers(ready):
    ws, src, before = ready
    number = add_line(src / "labels/train/train_00002.txt", "1 0.5 0.5 0.2")
    err = refused(ws, src, before, f"labels/train/train_00002.txt:{number}:", "expected 5 numbers", "found 4")
    assert err.problems[0].line == number


def test_label_value_that_is_not_a_number(ready):
    ws, src, before = ready
    set_line(src / "labels/val/val_00001.txt", 1, "0 0.5 abc 0.2 0.2")
    refused(ws, src, before, "labels/val/val_00001.txt:1:", "not a number")


def test_class_id_outside_names(ready):
    ws, src, before = ready
    set_line(src / "labels/train/train_00004.txt", 1, "7 0.5 0.5 0.2 0.2")
    refused(ws, src, before, "labels/train/train_00004.txt:1:", "class id 7 is outside `names` (0..2)")


def test_coordinates_outside_unit_range(ready):
    ws, src, before = ready
    set_line(src / "labels/train/train_00005.txt", 1, "0 1.2 0.5 0.2 -0.1")
    refused(ws, src, before, "labels/train/train_00005.txt:1:", "outside [0, 1]: 1.2 -0.1")


def test_label_without_an_image(ready):
    ws, src, before = ready
    (src / "labels/val/ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    refused(ws, src, before, "labels/val/ghost.txt", "label without an image")


def test_image_that_does_not_decode(ready):
    ws, src, before = ready
    (src / "images/train/train_00003.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a picture")
    refused(ws, src, before, "images/train/train_00003.png", "does not decode")


def test_split_in_data_yaml_that_does_not_exist(ready):
    ws, src, before = ready
    (src / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/validation\n"
                                   "names: [red, green, blue]\n")
    refused(ws, src, before, "data.yaml:3:", "split `val`: images/validation does not exist")


def test_data_yaml_that_is_not_yaml(ready):
    ws, src, before = ready
    (src / "data.yaml").write_text("train: images/train\nval: [images/val\nnames: [a]\n")
    refused(ws, src, before, "data.yaml:", "not valid YAML")


def test_every_problem_is_listed_with_file_and_line(ready):
    ws, src, before = ready
    for i in range(3):
        set_line(src / f"labels/train/train_0000{i}.txt", 1, "9 0.5 0.5 0.2 0.2")
    err = refused(ws, src, before, "3 error(s)")
    listed = err.to_dict()["problems"]
    assert [(p["file"], p["line"]) for p in listed if p["severity"] == "error"] == \
        [(f"labels/train/train_0000{i}.txt", 1) for i in range(3)]
    proc = cli("dataset", "add", "shapes", src, "--json")
    assert proc.returncode == 1
    for i in range(3):
        assert f"labels/train/train_0000{i}.txt:1:" in proc.stderr
    checked = cli("dataset", "add", "shapes", src, "--dry-run", "--json")
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    assert [(p["file"], p["line"]) for p in report["errors"]] == [(f"labels/train/train_0000{i}.txt", 1) for i in range(3)]
    assert snapshot(ws.root) == before


def test_dry_run_of_a_good_dataset_writes_nothing(ready):
    ws, src, before = ready
    (src / "labels/train/train_00001.txt").unlink()
    result = ws.dataset_add("shapes", src, dry_run=True)
    assert result.exit_code == 0 and result.errors == [] and len(result.warnings) == 1
    assert "can be imported" in result.summary() and result.splits["train"]["background"] == 1
    assert snapshot(ws.root) == before and not (ws.root / "datasets/shapes").exists()


def test_background_and_duplicate_images_are_warnings_and_kept(ws, demo_data):
    (demo_data / "labels/train/train_00001.txt").unlink()
    dup = (demo_data / "images/train/train_00002.png").read_bytes()
    (demo_data / "images/val/copy_of_train_00002.png").write_bytes(dup)
    (demo_data / "labels/val/copy_of_train_00002.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    result = ws.dataset_add("shapes", demo_data)
    assert result.changed and result.splits["train"]["background"] == 1
    messages = [f"{w['file']}: {w['message']}" for w in result.warnings]
    assert any(m.startswith("images/train/train_00001.png: no label file") for m in messages)
    assert any("duplicate of" in m and "train_00002.png" in m for m in messages)
    stored = json.loads((ws.root / "datasets/shapes.meta.json").read_text())["warnings"]
    assert len(stored) == len(result.warnings) == 2
    assert (ws.root / "datasets/shapes/images/train/train_00001.png").exists()


# --- unsafe archives -------------------------------------------------------------------

def zip_with(path: Path, entries: dict, symlinks=()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def dataset_entries(src: Path) -> dict:
    return {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}


def test_zip_slip_is_refused(ready, tmp_path):
    ws, src, before = ready
    archive = zip_with(tmp_path / "slip.zip", {**dataset_entries(src), "../../evil.txt": b"x"})
    refused(ws, archive, before, "slip.zip:../../evil.txt", "escapes the archive folder")
    assert not (tmp_path / "evil.txt").exists() and not (ws.root / ".nbversion" / "evil.txt").exists()


def test_absolute_path_in_zip_is_refused(ready, tmp_path):
    ws, src, before = ready
    archive = zip_with(tmp_path / "abs.zip", {**dataset_entries(src), "/tmp/evil.txt": b"x"})
    refused(ws, archive, before, "absolute path")


def test_symlink_in_zip_is_refused(ready, tmp_path):
    ws, src, before = ready
    archive = zip_with(tmp_path / "link.zip", dataset_entries(src), symlinks=[("images/train/passwd.png", "/etc/passwd")])
    refused(ws, archive, before, "link.zip:images/train/passwd.png", "symbolic link")


def test_zip_bomb_ratio_is_refused(ready, tmp_path):
    ws, src, before = ready
    archive = zip_with(tmp_path / "bomb.zip", {**dataset_entries(src), "zeros.bin": bytes(5_000_000)})
    refused(ws, archive, before, "bomb.zip:zeros.bin", "looks like a zip bomb")


def test_zip_over_the_configured_size_limit_is_refused(ready, tmp_path):
    ws, src, _ = ready
    config = ws.root / ".nbversion" / "config.toml"
    text = config.read_text().replace("max_zip_bytes = 500000000", "max_zip_bytes = 100000")
    assert text != config.read_text()
    config.write_text(text)
    ws.commit("smaller zip limit")
    before = snapshot(ws.root)
    archive = zip_with(tmp_path / "big.zip", dataset_entries(src))
    refused(ws, archive, before, "big.zip", "exceeds the limit of 100,000 bytes")


def test_invalid_dataset_inside_zip_is_refused_with_names_inside(ready, tmp_path):
    ws, src, before = ready
    entries = dataset_entries(src)
    entries["labels/val/val_00000.txt"] = b"0 0.5 0.5\n"
    archive = zip_with(tmp_path / "bad.zip", entries)
    refused(ws, archive, before, "labels/val/val_00000.txt:1:", "found 3")


def test_file_named_zip_that_is_not_one_is_refused(ready, tmp_path):
    ws, _src, before = ready
    fake = tmp_path / "data.zip"
    fake.write_bytes(b"this is not an archive")
    refused(ws, fake, before, "data.zip: not a readable ZIP archive")
