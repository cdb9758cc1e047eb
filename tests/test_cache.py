import json
import threading

import pytest
import torch

from pytest_ablation.run.cache import ResultCache, StoredVideo


def video(seed=0):
    g = torch.Generator().manual_seed(seed)
    return StoredVideo(
        frames=torch.randint(0, 256, (3, 3, 8, 8), generator=g, dtype=torch.uint8),
        condition=torch.randint(0, 256, (3, 8, 8), generator=g, dtype=torch.uint8),
        info={"seconds": 0.1},
    )


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_miss_then_hit_across_instances(tmp_path):
    compute, calls = counting(video())
    first = ResultCache(tmp_path).video("k1", compute)
    second_cache = ResultCache(tmp_path)
    again = second_cache.video("k1", compute)
    assert len(calls) == 1
    assert torch.equal(first.frames, again.frames) and torch.equal(first.condition, again.condition)
    assert again.info == {"seconds": 0.1}
    assert second_cache.stats.hits == 1 and second_cache.stats.misses == 0


def test_scores_round_trip(tmp_path):
    compute, calls = counting({"value": 0.25, "per_frame": [0.2, 0.3]})
    ResultCache(tmp_path).score("s1", compute)
    assert ResultCache(tmp_path).score("s1", compute) == {"value": 0.25, "per_frame": [0.2, 0.3]}
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupted_video_is_recomputed_and_reported(tmp_path, damage):
    cache = ResultCache(tmp_path)
    cache.video("k", lambda: video())
    path = cache.path("videos", "k", ".safetensors")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-5] ^= 0xFF
    else:
        data = bytearray(b"not a safetensors file")
    path.write_bytes(bytes(data))
    compute, calls = counting(video())
    fresh = ResultCache(tmp_path)
    result = fresh.video("k", compute)
    assert len(calls) == 1
    assert len(fresh.stats.corrupted) == 1 and str(path) in fresh.stats.corrupted[0]
    assert torch.equal(result.frames, video().frames)
    # The rewritten entry is sound again.
    assert ResultCache(tmp_path).video("k", compute) is not None and len(calls) == 1


def test_corrupted_score_is_recomputed(tmp_path):
    cache = ResultCache(tmp_path)
    cache.score("s", lambda: {"value": 1.0})
    path = cache.path("scores", "s", ".json")
    entry = json.loads(path.read_text())
    entry["payload"]["value"] = 0.5  # altered content no longer matches its checksum
    path.write_text(json.dumps(entry))
    fresh = ResultCache(tmp_path)
    assert fresh.score("s", lambda: {"value": 1.0}) == {"value": 1.0}
    assert fresh.stats.corrupted


def test_an_entry_stored_under_another_key_is_not_trusted(tmp_path):
    cache = ResultCache(tmp_path)
    cache.score("a", lambda: {"value": 1.0})
    target = cache.path("scores", "b", ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cache.path("scores", "a", ".json").read_bytes())
    fresh = ResultCache(tmp_path)
    assert fresh.score("b", lambda: {"value": 2.0}) == {"value": 2.0}
    assert fresh.stats.corrupted


def test_disabled_cache_writes_nothing_but_memoises_within_the_run(tmp_path):
    cache = ResultCache(tmp_path, enabled=False)
    compute, calls = counting({"value": 1.0})
    cache.score("s", compute)
    cache.score("s", compute)
    assert len(calls) == 1
    assert not any(tmp_path.rglob("*.json"))


def test_concurrent_processes_compute_an_entry_once(tmp_path):
    # Two cache handles stand for two workers; the lock makes the second wait and read.
    calls = []
    started = threading.Event()

    def slow():
        calls.append(1)
        started.set()
        threading.Event().wait(0.3)
        return {"value": 3.0}

    results = []
    first = threading.Thread(target=lambda: results.append(ResultCache(tmp_path).score("x", slow)))
    first.start()
    started.wait(5)
    results.append(ResultCache(tmp_path).score("x", slow))
    first.join()
    assert len(calls) == 1
    assert results == [{"value": 3.0}, {"value": 3.0}]


@pytest.fixture
def no_locks(monkeypatch):
    """A filesystem that gives no lock (some Lustre and NFS set-ups, object-store mounts):
    acquiring fails as flock does there."""
    import errno

    import filelock

    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)


def test_without_locks_entries_are_still_written_and_read_back(tmp_path, no_locks):
    compute, calls = counting(video())
    first = ResultCache(tmp_path)
    made = first.video("k1", compute)
    assert first.stats.unwritten == [] and first.stats.misses == 1
    again = ResultCache(tmp_path)
    assert torch.equal(again.video("k1", compute).frames, made.frames)
    assert len(calls) == 1 and again.stats.hits == 1
    assert again.score("s", lambda: {"value": 2.0}) == {"value": 2.0}
    assert ResultCache(tmp_path).score("s", lambda: pytest.fail("recomputed")) == {"value": 2.0}


def test_without_locks_concurrent_writers_of_a_key_leave_one_whole_entry(tmp_path, no_locks):
    calls = []
    both_computing = threading.Barrier(2, timeout=5)

    def slow():
        calls.append(1)
        both_computing.wait()  # neither can see the other's entry: both compute
        return {"value": 3.0, "per_frame": list(range(2000))}

    threads = [threading.Thread(target=lambda: ResultCache(tmp_path).score("x", slow)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 2
    reader = ResultCache(tmp_path)
    assert reader.score("x", lambda: pytest.fail("recomputed"))["value"] == 3.0
    assert reader.stats.corrupted == []
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []


def test_writes_are_atomic(tmp_path):
    cache = ResultCache(tmp_path)
    cache.score("s", lambda: {"value": 1.0})
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_tensor_sets_round_trip_and_are_checked(tmp_path):
    weights = {"a.weight": torch.randn(3, 4), "b.bias": torch.randn(2).to(torch.bfloat16)}
    compute, calls = counting(weights)
    ResultCache(tmp_path).tensors("w", compute)
    loaded = ResultCache(tmp_path).tensors("w", compute)
    assert len(calls) == 1
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)
    path = ResultCache(tmp_path).path("tensors", "w", ".safetensors")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    fresh = ResultCache(tmp_path)
    fresh.tensors("w", compute)
    assert len(calls) == 2 and fresh.stats.corrupted


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import os
    import stat

    from pytest_ablation.files import write_json_atomic

    path = write_json_atomic(tmp_path / "report.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


needs_non_root = pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="root reads files whatever their permissions",
)


@needs_non_root
@pytest.mark.parametrize("kind", ["video", "score"])
def test_an_unreadable_entry_is_recomputed_and_replaced(tmp_path, kind):
    # A shared cache entry written by another user with umask 077: this user cannot read it.
    value = video() if kind == "video" else {"value": 0.25}
    store = (
        (lambda cache, compute: cache.video("k", compute))
        if kind == "video"
        else (lambda cache, compute: cache.score("k", compute))
    )
    store(ResultCache(tmp_path), lambda: value)
    path = ResultCache(tmp_path).path(kind + "s", "k", ".safetensors" if kind == "video" else ".json")
    path.chmod(0o000)
    with pytest.raises(PermissionError):
        path.read_bytes()
    compute, calls = counting(value)
    fresh = ResultCache(tmp_path)
    result = store(fresh, compute)
    assert len(calls) == 1 and fresh.stats.misses == 1
    assert torch.equal(result.frames, value.frames) if kind == "video" else result == value
    assert len(fresh.stats.unreadable) == 1 and str(path) in fresh.stats.unreadable[0]
    assert "Permission denied" in fresh.stats.unreadable[0] and not fresh.stats.unwritten
    # Written over: the next run reads it.
    again = ResultCache(tmp_path)
    store(again, compute)
    assert len(calls) == 1 and again.stats.hits == 1


@needs_non_root
def test_an_unreadable_entry_that_cannot_be_replaced_still_gives_its_value(tmp_path):
    ResultCache(tmp_path).score("k", lambda: {"value": 0.25})
    path = ResultCache(tmp_path).path("scores", "k", ".json")
    path.chmod(0o000)
    path.parent.chmod(0o555)  # another user's folder: no new files either
    try:
        compute, calls = counting({"value": 0.25})
        fresh = ResultCache(tmp_path)
        assert fresh.score("k", compute) == {"value": 0.25} and len(calls) == 1
        assert len(fresh.stats.unwritten) == 1
        assert f"{path}: the unreadable entry could not be replaced: " in fresh.stats.unwritten[0]
    finally:
        path.parent.chmod(0o755)


@pytest.mark.parametrize("kind", ["video", "score"])
def test_a_folder_in_an_entrys_place_is_recomputed_and_left_alone(tmp_path, kind):
    value = video() if kind == "video" else {"value": 0.25}
    cache = ResultCache(tmp_path)
    path = cache.path(kind + "s", "k", ".safetensors" if kind == "video" else ".json")
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("someone's folder")
    compute, calls = counting(value)
    result = cache.video("k", compute) if kind == "video" else cache.score("k", compute)
    assert len(calls) == 1
    assert torch.equal(result.frames, value.frames) if kind == "video" else result == value
    assert len(cache.stats.unreadable) == 1 and str(path) in cache.stats.unreadable[0]
    # It cannot be written over: the value is still returned, and the stats say why.
    assert len(cache.stats.unwritten) == 1
    assert f"{path}: the unreadable entry could not be replaced: " in cache.stats.unwritten[0]
    assert (path / "notes.txt").read_text() == "someone's folder"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_unreadable_entries_reach_the_merged_stats():
    from pytest_ablation.results.report_json import merge_cache_stats

    merged = merge_cache_stats(
        [
            {"cache": {"unreadable": ["b: Is a directory"]}},
            {"cache": {"unreadable": ["a: Permission denied"]}},
            {"cache": {}},
        ]
    )
    assert merged["unreadable"] == ["a: Permission denied", "b: Is a directory"]
    assert "unreadable" not in merge_cache_stats([{"cache": {"hits": 1}}])
