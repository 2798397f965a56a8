"""`dataset add|list|show|diff` on real git + DVC, with datasets made by nbversion.demo."""
import hashlib
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nbversion.demo import edit_labels, make_image, write_label
from nbversion.errors import InvalidInput, NotFound

from conftest import cli, cli_json, git, snapshot

VOLATILE = ("name", "source", "added_at")


def zip_folder(folder: Path, dest: Path, top: str | None = None) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                archive.write(path, f"{top}/{rel}" if top else rel)
    return dest


def meta(root, name):
    return json.loads((Path(root) / "datasets" / f"{name}.meta.json").read_text())


def add_images(folder: Path, count: int, split: str = "train", seed: int = 99) -> list[str]:
    rng = np.random.default_rng(seed)
    stems = []
    for i in range(count):
        image, lines = make_image(rng, 64)
        stem = f"{split}_new_{i:03d}"
        image.save(folder / "images" / split / f"{stem}.png")
        write_label(folder / "labels" / split / f"{stem}.txt", lines)
        stems.append(stem)
    return stems


def test_add_folder_writes_yolo_layout_meta_and_one_commit(ws, demo_data):
    before = git(ws.root, "rev-list", "--count", "HEAD")
    result = ws.dataset_add("shapes", demo_data, tags=["v1"], message="first import")
    root = ws.root
    assert result.changed and result.classes == ["red", "green", "blue"]
    assert result.splits["train"] == {"images": 16, "labels": 16, "instances": result.splits["train"]["instances"],
                                      "background": 0}
    assert result.splits["val"]["images"] == 8
    m = meta(root, "shapes")
    assert m["format"] == "yolo" and m["files"] == 49 and m["tags"] == ["v1"]
    assert m["content_hash"].endswith(".dir") and m["content_hash"] in (root / "datasets/shapes.dvc").read_text()
    assert sum(m["class_instances"].values()) == sum(s["instances"] for s in m["splits"].values())
    assert m["added_by"] == "tester@example.com" and m["source"] == str(demo_data)
    # data.yaml rewritten so Ultralytics reads the copy wherever it is (no absolute paths)
    data_yaml = (root / "datasets/shapes/data.yaml").read_text()
    assert "train: images/train" in data_yaml and str(demo_data) not in data_yaml
    assert int(git(root, "rev-list", "--count", "HEAD")) == int(before) + 1
    assert git(root, "log", "-1", "--format=%s").strip() == "first import"
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "tag").split() == ["dataset/shapes/v1"]
    last_audit = json.loads((root / ".nbversion/audit.jsonl").read_text().splitlines()[-1])
    assert last_audit["action"] == "dataset add" and last_audit["target"] == "shapes"
    assert ws.status().clean


def test_source_files_stay_the_users_own(ws, demo_data):
    """The import may hard-link sources into the staging folder; DVC must never adopt them."""
    label = demo_data / "labels/train/train_00000.txt"
    original = label.read_text()
    ws.dataset_add("shapes", demo_data)
    stored = ws.root / "datasets/shapes/labels/train/train_00000.txt"
    assert label.stat().st_nlink == 1 and os.access(label, os.W_OK)
    assert label.stat().st_ino != stored.stat().st_ino
    label.write_text("0 0.1 0.1 0.1 0.1\n")
    assert stored.read_text() == original


def test_folder_and_zip_give_identical_metadata(ws, demo_data, tmp_path):
    ws.dataset_add("from-folder", demo_data)
    ws.dataset_add("from-zip", zip_folder(demo_data, tmp_path / "shapes.zip", top="shapes"))
    a, b = meta(ws.root, "from-folder"), meta(ws.root, "from-zip")
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}
    # the temp extraction is gone
    assert not list((ws.root / ".nbversion" / "tmp").glob("import-*"))


def test_zip_without_top_folder_is_also_recognised(ws, demo_data, tmp_path):
    result = ws.dataset_add("flat", zip_folder(demo_data, tmp_path / "flat.zip"))
    assert result.format == "yolo" and result.splits["val"]["images"] == 8


def test_reimport_unchanged_is_no_change(ws, demo_data):
    first = ws.dataset_add("shapes", demo_data)
    before = snapshot(ws.root)
    again = ws.dataset_add("shapes", demo_data)
    assert not again.changed and again.commit == first.commit
    assert "no change" in again.summary()
    assert snapshot(ws.root) == before


def test_reimport_after_change_is_a_new_version(ws, demo_data):
    first = ws.dataset_add("shapes", demo_data)
    add_images(demo_data, 2)
    second = ws.dataset_add("shapes", demo_data)
    assert second.changed and second.commit != first.commit
    assert second.splits["train"]["images"] == 18
    listed = ws.dataset_list().datasets
    assert [(d["name"], d["versions"], d["images"], d["version"]) for d in listed] == \
        [("shapes", 2, 26, second.commit)]


def test_a_new_version_stores_only_new_content_and_keeps_old_objects(ws, demo_data):
    """Objects are written while the import validates; a re-import stores only what is new and
    never rewrites an object an earlier version names (same inode, same bytes)."""
    ws.dataset_add("shapes", demo_data)
    cache = ws.root / ".dvc" / "cache" / "files" / "md5"
    before = {p: p.stat().st_ino for p in cache.glob("??/*")}
    stems = add_images(demo_data, 2)
    ws.dataset_add("shapes", demo_data)
    after = {p: p.stat().st_ino for p in cache.glob("??/*")}
    assert {p: after[p] for p in before} == before
    new = {p.parent.name + p.name for p in set(after) - set(before)}
    expected = {hashlib.md5((demo_data / sub / "train" / f"{stem}{ext}").read_bytes()).hexdigest()
                for stem in stems for sub, ext in (("images", ".png"), ("labels", ".txt"))}
    assert {md5 for md5 in new if not md5.endswith(".dir")} == expected
    assert len([md5 for md5 in new if md5.endswith(".dir")]) == 1
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in after)
    assert ws.verify().problems == [] and ws.status().clean


def test_plain_folder_is_format_files(ws, tmp_path):
    src = tmp_path / "docs"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv").write_text("x,y\n1,2\n")
    (src / "sub" / "b.txt").write_text("hello\n")
    result = ws.dataset_add("tables", src)
    assert result.format == "files" and result.files == 2 and result.classes == []
    assert (ws.root / "datasets/tables/sub/b.txt").read_text() == "hello\n"


def test_roboflow_style_layout_with_parent_paths(ws, demo_data, tmp_path):
    """train/images + ../train/images in data.yaml, as Roboflow exports it."""
    src = tmp_path / "robo"
    for split, new in (("train", "train"), ("val", "valid")):
        shutil.copytree(demo_data / "images" / split, src / new / "images")
        shutil.copytree(demo_data / "labels" / split, src / new / "labels")
    (src / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 3\n"
                                   "names: ['red', 'green', 'blue']\n")
    result = ws.dataset_add("robo", src)
    assert result.splits["train"]["labels"] == 16 and result.splits["val"]["images"] == 8
    data_yaml = (ws.root / "datasets/robo/data.yaml").read_text()
    assert "train: train/images" in data_yaml and "val: valid/images" in data_yaml


def test_split_given_as_txt_list(ws, demo_data):
    listing = [f"./images/train/train_{i:05d}.png" for i in range(10)]
    (demo_data / "train.txt").write_text("\n".join(listing) + "\n")
    (demo_data / "data.yaml").write_text("path: .\ntrain: train.txt\nval: images/val\nnames: [red, green, blue]\n")
    result = ws.dataset_add("listed", demo_data)
    assert result.splits["train"]["images"] == 10


def test_tag_used_twice_is_refused(ws, demo_data):
    ws.dataset_add("shapes", demo_data, tags=["gold"])
    add_images(demo_data, 1)
    before = snapshot(ws.root)
    with pytest.raises(InvalidInput, match="tag 'gold' already"):
        ws.dataset_add("shapes", demo_data, tags=["gold"])
    assert snapshot(ws.root) == before


@pytest.fixture
def two_versions(ws, demo_data):
    """v1 = demo data; v2 = 3 images added, 1 deleted, 2 labels edited (one box re-classed, one added)."""
    ws.dataset_add("shapes", demo_data, tags=["v1"])
    add_images(demo_data, 3)
    (demo_data / "images/val/val_00007.png").unlink()
    removed_label = demo_data / "labels/val/val_00007.txt"
    removed_counts = [line.split()[0] for line in removed_label.read_text().splitlines()]
    removed_label.unlink()
    first, second = sorted((demo_data / "labels/train").glob("train_0000[01].txt"))
    lines = first.read_text().splitlines()
    old_cls = lines[0].split()[0]
    new_cls = "2" if old_cls != "2" else "0"
    lines[0] = " ".join([new_cls, *lines[0].split()[1:]])
    write_label(first, lines)
    write_label(second, second.read_text().splitlines() + ["1 0.5 0.5 0.2 0.2"])
    ws.dataset_add("shapes", demo_data, tags=["v2"])
    return {"old_cls": int(old_cls), "new_cls": int(new_cls), "removed_counts": removed_counts,
            "first": first.name, "second": second.name}


def test_diff_reports_added_removed_and_edited_labels_with_class_deltas(ws, demo_data, two_versions):
    names = ["red", "green", "blue"]
    d = ws.dataset_diff("shapes", "v1", "v2")
    assert sorted(i["path"] for i in d.images_added) == [f"images/train/train_new_{i:03d}.png" for i in range(3)]
    assert [i["path"] for i in d.images_removed] == ["images/val/val_00007.png"]
    assert d.images_removed[0]["split"] == "val" and d.images_added[0]["split"] == "train"
    assert d.images_changed == [] and d.images_moved == []
    changed = {lc["path"]: lc for lc in d.labels_changed}
    assert sorted(changed) == [f"labels/train/{two_versions['first']}", f"labels/train/{two_versions['second']}"]
    second = changed[f"labels/train/{two_versions['second']}"]
    assert second["after"] == second["before"] + 1 and second["classes"] == {"green": 1}
    # expected per-class deltas from the files themselves
    expected = {n: 0 for n in names}
    for stem in (f"train_new_{i:03d}" for i in range(3)):
        for line in (demo_data / "labels/train" / f"{stem}.txt").read_text().splitlines():
            expected[names[int(line.split()[0])]] += 1
    for cls in two_versions["removed_counts"]:
        expected[names[int(cls)]] -= 1
    expected[names[two_versions["old_cls"]]] -= 1
    expected[names[two_versions["new_cls"]]] += 1
    expected["green"] += 1
    assert d.class_deltas == {k: v for k, v in expected.items() if v}
    text = str(d)
    assert "3 image(s) added, 1 removed, 0 changed" in text and "2 label file(s) changed" in text
    page = d._repr_html_()
    assert "before &rarr; after" in page and page.count("data:image/png;base64,") == 4   # 2 pairs
    assert "previews" not in d.to_dict() and d.to_dict()["class_deltas"] == d.class_deltas


def test_diff_reads_only_the_labels_that_changed(ws, demo_data, two_versions, monkeypatch):
    from nbversion.core.artifacts import dataset_diff
    read = []
    original = dataset_diff._label_counts
    monkeypatch.setattr(dataset_diff, "_label_counts", lambda root, md5: (read.append(md5), original(root, md5))[1])
    ws.dataset_diff("shapes", "v1", "v2")
    # 2 edited labels + 3 new + 1 removed, each side read at most once; 24 unchanged never
    assert 0 < len([m for m in read if m]) <= 2 * 2 + 3 + 1


def test_diff_by_tilde_and_commit_and_no_change(ws, demo_data, two_versions):
    by_tilde = ws.dataset_diff("shapes", "~1", "~0")
    commit_v1 = git(ws.root, "rev-list", "-n1", "dataset/shapes/v1").strip()
    by_commit = ws.dataset_diff("shapes", commit_v1)
    assert len(by_tilde.images_added) == len(by_commit.images_added) == 3
    assert "no content changes" in ws.dataset_diff("shapes", "v2", "v2").summary()


def test_diff_reports_split_moves(ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    for kind, suffix in (("images", "png"), ("labels", "txt")):
        os.replace(demo_data / kind / "train" / f"train_00003.{suffix}", demo_data / kind / "val" / f"train_00003.{suffix}")
    ws.dataset_add("shapes", demo_data)
    d = ws.dataset_diff("shapes", "~1", "~0")
    assert d.images_moved == [{"path": "images/val/train_00003.png", "from": "train", "to": "val"}]
    assert d.images_added == d.images_removed == [] and d.labels_changed == [] and d.class_deltas == {}


def test_show_metadata_histogram_and_sample_boxes(ws, demo_data, two_versions):
    shown = ws.dataset_show("shapes@v1")
    v1_meta = json.loads(git(ws.root, "show", "dataset/shapes/v1:datasets/shapes.meta.json"))
    assert shown.meta == v1_meta and shown.rev == "v1"
    headers, rows = shown.table()
    assert headers[:3] == ["split", "class", "boxes"]   # per split since issue 18: summed, the class histogram
    per_class = {}
    for row in rows:
        per_class[row[1]] = per_class.get(row[1], 0) + row[2]
    assert per_class == v1_meta["class_instances"]
    page = shown._repr_html_()
    assert page.count("<figure") == 6 and "boxes)" in page
    assert ws.dataset_show("shapes@~1").commit == shown.commit
    assert ws.dataset_show("shapes").meta["tags"] == ["v2"]
    with pytest.raises(NotFound, match="goes back too far"):
        ws.dataset_show("shapes@~5")
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        ws.dataset_show("nope")


def test_cli_dataset_verbs(ws, demo_data):
    added = cli_json("dataset", "add", "shapes", demo_data, "--tag", "v1")
    assert added["changed"] and added["classes"] == ["red", "green", "blue"]
    listed = cli_json("dataset", "list")
    assert listed["datasets"][0]["name"] == "shapes" and listed["datasets"][0]["images"] == 24
    assert cli_json("dataset", "show", "shapes@v1")["meta"]["content_hash"] == added["content_hash"]
    edit_labels(demo_data, 2)
    cli("dataset", "add", "shapes", demo_data, check=0)
    out = cli("dataset", "diff", "shapes", "v1", "~0", check=0).stdout
    assert "label changed" in out and "2 label file(s) changed" in out
    bad = cli("dataset", "show", "shapes@~9")
    assert bad.returncode == 1 and "error:" in bad.stderr and "hint:" in bad.stderr


def test_magic_dataset_add_and_show(ws, demo_data, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbversion")
        r = shell.run_cell(f"%mv_dataset add shapes {demo_data}")
        assert r.success and r.result.changed
        r = shell.run_cell("%mv_dataset show shapes")
        assert r.success and "<img" in r.result._repr_html_()
    finally:
        InteractiveShell.clear_instance()


def test_checkout_of_dataset_version_restores_files(ws, demo_data, two_versions):
    ws.checkout("dataset/shapes/v1", ["datasets/shapes", "datasets/shapes.meta.json"])
    assert (ws.root / "datasets/shapes/images/val/val_00007.png").exists()
    assert not (ws.root / "datasets/shapes/images/train/train_new_000.png").exists()


def test_edits_made_in_place_are_validated_and_versioned(ws, demo_data):
    ws.dataset_add("shapes", demo_data)
    folder = ws.root / "datasets" / "shapes"
    before = snapshot(ws.root)
    assert not ws.dataset_add("shapes", folder).changed        # nothing edited yet
    assert snapshot(ws.root) == before
    label = folder / "labels/train/train_00000.txt"
    write_label(label, label.read_text().splitlines() + ["5 0.5 0.5 0.1 0.1"])
    with pytest.raises(InvalidInput, match="labels/train/train_00000.txt:"):
        ws.dataset_add("shapes", folder)
    write_label(label, label.read_text().splitlines()[:-1] + ["1 0.5 0.5 0.1 0.1"])
    result = ws.dataset_add("shapes", folder)
    assert result.changed and ws.dataset_diff("shapes", "~1").labels_changed[0]["classes"] == {"green": 1}
    assert ws.status().clean


def test_import_never_replaces_work_that_exists_nowhere_else(ws, demo_data, tmp_path):
    from nbversion.errors import UncommittedChanges
    stray = ws.root / "datasets" / "shapes"
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(UncommittedChanges, match="not a versioned dataset"):
        ws.dataset_add("shapes", demo_data)
    assert (stray / "notes.txt").read_text() == "mine"
    shutil.rmtree(stray)
    ws.dataset_add("shapes", demo_data)
    label = stray / "labels/val/val_00000.txt"
    write_label(label, ["0 0.5 0.5 0.3 0.3"])             # edited in place, not recorded
    with pytest.raises(UncommittedChanges, match="not recorded"):
        ws.dataset_add("shapes", demo_data)
    assert label.read_text() == "0 0.5 0.5 0.3 0.3\n"


def test_stored_data_yaml_is_read_by_ultralytics_from_any_folder(ws, demo_data, tmp_path, monkeypatch):
    ws.dataset_add("shapes", demo_data)
    monkeypatch.chdir(tmp_path)                 # not the dataset folder: relative paths must still work
    from ultralytics.data.utils import check_det_dataset
    data = check_det_dataset(str(ws.root / "datasets/shapes/data.yaml"))
    assert Path(data["train"]) == ws.root / "datasets/shapes/images/train"
    assert Path(data["val"]) == ws.root / "datasets/shapes/images/val"
    assert data["names"] == {0: "red", 1: "green", 2: "blue"}


def test_a_yolo_folder_committed_in_place_is_a_dataset_like_an_import(ws):
    # README's quickstart: the demo written straight into datasets/shapes, then `commit`
    from nbversion.demo import make_dataset

    make_dataset(ws.root / "datasets" / "shapes")
    cli("commit", "-m", "Add the shapes dataset", check=0)
    listed = {d["name"]: d for d in cli_json("dataset", "list")["datasets"]}
    assert listed["shapes"]["images"] == 24
    (ws.root / "datasets/shapes/labels/train/train_00000.txt").unlink()
    cli("commit", "-m", "Drop a label", check=0)
    diff = cli_json("dataset", "diff", "shapes", "HEAD~1", "HEAD")
    assert [c["path"] for c in diff["labels_changed"]] == ["labels/train/train_00000.txt"]
    assert cli("verify").returncode == 0 and cli_json("status")["changes"] == []
    (ws.root / "datasets" / "notes").mkdir()            # a plain folder of files stays plain data
    (ws.root / "datasets" / "notes" / "a.csv").write_text("a,b\n")
    cli("commit", "-m", "notes", check=0)
    assert "notes" not in {d["name"] for d in cli_json("dataset", "list")["datasets"]}
