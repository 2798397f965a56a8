"""`backup create|restore`: one archive, restored into a workspace that `verify` accepts."""
from __future__ import annotations

import json
import os
import tarfile

import pytest

from conftest import cli, git
from test_verify import WEIGHTS, add_dataset, register_fake
from nbversion.core.storage import backup
from nbversion.errors import IntegrityError, NotFound, UsageError


@pytest.fixture
def populated(ws):
    register_fake(ws)
    add_dataset(ws, "coco", "v1", seed=1)
    git(ws.root, "branch", "exp/other")
    return ws


def assert_restored(target):
    import nbversion as nbv

    restored = nbv.open(target)
    assert restored.verify().problems == []
    assert (target / "registry/yolo/v1.0.0/files/best.pt").read_bytes() == WEIGHTS
    assert "yolo@v1.0.0" in git(target, "tag")
    assert "exp/other" in git(target, "branch")
    return restored


def test_backup_and_restore_round_trip(populated, tmp_path):
    result = populated.backup_create(out=str(tmp_path / "b1.tar.gz"))
    assert result.objects >= 5 and not result.encrypted and result.missing == []
    report = json.loads((tmp_path / "b1.tar.gz.json").read_text())
    assert report["archive_sha256"] == result.sha256
    assert any("registered yolo@v1.0.0" in o["needed_by"] for o in report["objects"].values())
    with tarfile.open(tmp_path / "b1.tar.gz") as tar:
        names = tar.getnames()
    assert {"repo.bundle", "report.json", "report.html"} <= set(names)

    restored = backup.restore(str(tmp_path / "b1.tar.gz"), str(tmp_path / "restored"))
    assert restored.objects == result.objects
    assert_restored(tmp_path / "restored")


def test_encrypted_backup_round_trip_and_wrong_passphrase_refused(populated, tmp_path):
    archive = tmp_path / "secret.tar.gz"
    populated.backup_create(out=str(archive), encrypt=True, passphrase="correct horse")
    raw = archive.read_bytes()
    assert WEIGHTS[:64] not in raw and b"report.json" not in raw

    with pytest.raises(IntegrityError, match="wrong passphrase"):
        backup.restore(str(archive), str(tmp_path / "nope"), passphrase="wrong")
    assert not (tmp_path / "nope").exists() or not any((tmp_path / "nope").iterdir())
    with pytest.raises(UsageError):
        backup.restore(str(archive), str(tmp_path / "nope"))

    backup.restore(str(archive), str(tmp_path / "restored"), passphrase="correct horse")
    assert_restored(tmp_path / "restored")


def test_truncated_encrypted_backup_is_refused(populated, tmp_path):
    archive = tmp_path / "secret.tar.gz"
    populated.backup_create(out=str(archive), encrypt=True, passphrase="pw")
    archive.write_bytes(archive.read_bytes()[:-20])
    with pytest.raises(IntegrityError):
        backup.restore(str(archive), str(tmp_path / "restored"), passphrase="pw")


def test_incremental_backup_stores_only_new_objects_and_restores_the_chain(populated, tmp_path):
    first = populated.backup_create(out=str(tmp_path / "full.tar.gz"))
    add_dataset(populated, "coco", "v2", seed=2)
    second = populated.backup_create(out=str(tmp_path / "incr.tar.gz"), since=str(tmp_path / "full.tar.gz"))
    full_objects = set(json.loads((tmp_path / "full.tar.gz.json").read_text())["objects"])
    incr_objects = set(json.loads((tmp_path / "incr.tar.gz.json").read_text())["objects"])
    assert incr_objects and not incr_objects & full_objects
    assert second.objects == len(incr_objects) < first.objects + len(incr_objects)
    assert second.base == "full.tar.gz"

    backup.restore(str(tmp_path / "incr.tar.gz"), str(tmp_path / "restored"))
    restored = assert_restored(tmp_path / "restored")
    assert "dataset/coco/v2" in git(restored.root, "tag")

    os.rename(tmp_path / "full.tar.gz", tmp_path / "moved.tar.gz")
    with pytest.raises(NotFound, match="full.tar.gz"):
        backup.restore(str(tmp_path / "incr.tar.gz"), str(tmp_path / "again"))


def test_tampered_object_is_refused_on_restore(populated, tmp_path):
    archive = tmp_path / "b.tar.gz"
    populated.backup_create(out=str(archive))
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.startswith("objects/") and not member.name.endswith(".dir"):
                data = b"X" + data[1:]
            import io
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(IntegrityError, match="does not match its hash"):
        backup.restore(str(bad), str(tmp_path / "restored"))


def test_cli_encrypted_backup_with_passphrase_from_environment(populated, tmp_path):
    env = {**os.environ, "NBVERSION_BACKUP_PASSPHRASE": "s3cret"}
    archive = tmp_path / "cli.tar.gz"
    out = cli("backup", "create", "--out", archive, "--encrypt", env=env, check=0).stdout
    assert "encrypted" in out and "yes" in out
    wrong = {**os.environ, "NBVERSION_BACKUP_PASSPHRASE": "guess"}
    proc = cli("backup", "restore", archive, tmp_path / "r1", env=wrong, check=1)
    assert "wrong passphrase" in proc.stderr
    cli("backup", "restore", archive, tmp_path / "r2", env=env, cwd=tmp_path, check=0)
    assert cli("verify", cwd=tmp_path / "r2", check=0).returncode == 0
