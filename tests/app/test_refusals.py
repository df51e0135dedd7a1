"""Refused versions remembered by their files (app.refusals): the stamp, and reasons that name no server path."""

from __future__ import annotations

import pytest

from app.errors import ModelNotFound
from app.refusals import Refusals, stamp
from tests.app.conftest import add_version


def test_a_folder_s_stamp_changes_with_its_files_and_only_then(tmp_path):
    folder = add_version(tmp_path / "models", "lenet5", 1)
    first = stamp(folder)
    assert stamp(folder) == first
    (folder / "fake.json").write_text('{"digit": 12345}')  # another size
    assert stamp(folder) != first
    second = stamp(folder)
    (folder / "extra").write_bytes(b"")  # another file
    assert stamp(folder) != second
    assert stamp(tmp_path / "missing") == (0, 0, 0, 0)


def test_a_refusal_names_the_version_not_the_server_s_paths(tmp_path):
    root = tmp_path / "models"
    folder = add_version(root, "lenet5", 2)
    told = []
    refusals = Refusals(root, lambda *heard: told.append(heard))
    refusals.refuse("lenet5", 2, folder, f"{folder}: cannot load ({root}/lenet5/2/variables: bad)")
    assert told == [("lenet5", 2, "lenet5/2: cannot load (lenet5/2/variables: bad)")]
    assert refusals.holds("lenet5", 2, folder) and not refusals.holds("lenet5", 1, folder)
    with pytest.raises(ModelNotFound, match=r"version 2 is broken: lenet5/2: cannot load"):
        refusals.check("lenet5", 2, folder)
    refusals.forget("lenet5", 2)
    assert refusals.reason("lenet5", 2) is None
    refusals.check("lenet5", 2, folder)  # forgotten: worth a load again
