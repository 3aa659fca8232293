"""The pure parts of the real backend's file API: chroot-style path resolution, the write pattern of
m.fs.create, argument checks, and drop_caches's guard (against a fake /proc tree, never the host's)."""

from __future__ import annotations

import errno
import functools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagelab.real import fs as realfs
from pagelab.real import machine as realmachine
from pagelab.real.fs import RealFs, _write_all, resolve
from pagelab.real.sysfs_io import DROP_CACHES, HostWriteRefused, SysfsWriter


@pytest.mark.parametrize("path, rel, must_be_dir", [
    ("/data/db", "data/db", False), ("/", "", True), ("/.", "", True), ("/..", "", True),
    ("/../../etc/passwd", "etc/passwd", False), ("/a/./b/../c", "a/c", False), ("//a//b", "a/b", False),
    ("/a/b/", "a/b", True), ("/a/b/.", "a/b", True), ("/a/b/..", "a", True),
])
def test_resolve_is_chroot_style(path, rel, must_be_dir):
    assert resolve(path) == (rel, must_be_dir)


def test_empty_path_is_enoent_and_a_relative_one_einval():
    with pytest.raises(FileNotFoundError):
        resolve("")
    for rel in ("data/db", ".", "..", "a/../b"):
        with pytest.raises(OSError) as err:
            resolve(rel)
        assert err.value.errno == errno.EINVAL


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c.d", "..."]), max_size=12))
def test_no_path_escapes_the_root(names):
    rel, _ = resolve("/" + "/".join(names))
    parts = rel.split("/") if rel else []
    assert ".." not in parts and "." not in parts and "" not in parts


def test_host_path_joins_the_root(tmp_path, monkeypatch):
    monkeypatch.setattr(realfs, "ROOT_PARENT", str(tmp_path))
    fs = RealFs()
    root = fs.root
    assert root.startswith(str(tmp_path / realfs.ROOT_PREFIX))
    assert fs.host_path("/x/y") == os.path.join(root, "x/y")
    assert fs.host_path(b"/../x") == os.path.join(root, "x")
    assert fs.host_path("/x/") == os.path.join(root, "x") + "/"
    with pytest.raises(TypeError):
        fs.host_path(3)
    fs.close()
    assert not os.path.exists(root)
    with pytest.raises(FileNotFoundError):
        fs.host_path("/x")


@pytest.mark.parametrize("size, content, written_in", [
    (10, None, 3), (10, b"ab", 3), (10, b"abc", 4), (7, b"abcdefghij", 2), (0, b"x", 5), (4096 * 3 + 1, b"xyz", 4096),
])
def test_write_all_repeats_content_in_calls_of_written_in(tmp_path, monkeypatch, size, content, written_in):
    calls: list[int] = []
    real_write = os.write

    def write(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(realfs.os, "write", write)
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        _write_all(fd, size, content, written_in)
    finally:
        os.close(fd)
    expected = bytes(size) if content is None else (content * (size // len(content) + 1))[:size]
    assert path.read_bytes() == expected
    assert calls == [min(written_in, size - k) for k in range(0, size, written_in)]


def test_create_checks_its_arguments(tmp_path, monkeypatch):
    monkeypatch.setattr(realfs, "ROOT_PARENT", str(tmp_path))
    fs = RealFs()
    try:
        for kwargs, exc in [({"written_in": 0}, ValueError), ({"written_in": 1.5}, TypeError),
                            ({"content": b""}, TypeError), ({"content": "text"}, TypeError),
                            ({"content": b"x", "sparse": True}, ValueError)]:
            with pytest.raises(exc):
                fs.create("/f", 10, **kwargs)
        with pytest.raises(ValueError):
            fs.create("/f", -1)
        with pytest.raises(TypeError):
            fs.create("/f", 1.0)
        assert not fs.exists("/f")
        with pytest.raises(IsADirectoryError):
            fs.create("/d/", 10)
    finally:
        fs.close()


def test_drop_caches_needs_the_flag_then_syncs_and_writes(tmp_path, monkeypatch):
    fake = tmp_path / DROP_CACHES.lstrip("/")
    fake.parent.mkdir(parents=True)
    fake.write_text("0\n")
    monkeypatch.setattr(realmachine, "SysfsWriter", functools.partial(SysfsWriter, root=tmp_path))
    synced: list[bool] = []
    monkeypatch.setattr(realmachine.os, "sync", lambda: synced.append(True))
    with realmachine.Machine() as m:
        with pytest.raises(HostWriteRefused):
            m.drop_caches(3)
        assert fake.read_text() == "0\n" and not synced
    with realmachine.Machine(allow_host_changes=True) as m:
        m.drop_caches(1)
        assert fake.read_text() == "1\n" and synced == [True]
        m.drop_caches()
        assert fake.read_text() == "3\n"
        for bad in (0, 4, 5, -1):
            with pytest.raises(OSError) as err:
                m.drop_caches(bad)
            assert err.value.errno == errno.EINVAL
        with pytest.raises(TypeError):
            m.drop_caches("3")
        assert fake.read_text() == "3\n"
