"""Many shards on one cache folder, as processes (not threads): every entry is computed
once, however many shards want it at the same time, and every shard reads the same value."""

import multiprocessing
import os
import time
from pathlib import Path

from pytest_ablation.run.cache import ResultCache

SHARDS = 8
REFERENCE_ENTRIES = [f"reference-{i}" for i in range(4)]  # wanted by every shard


def own_entries(shard: int) -> list[str]:
    return [f"variant-{shard}-{i}" for i in range(3)]


def run_shard(folder: str, log: str, shard: int, start: float) -> dict:
    while time.time() < start:  # all shards ask at once
        time.sleep(0.001)
    cache = ResultCache(Path(folder))
    values = {}
    for key in REFERENCE_ENTRIES + own_entries(shard):

        def compute(key=key):
            # O_APPEND writes of one short line do not interleave between processes.
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"{key} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
            time.sleep(0.05)  # long enough for the others to arrive while it is computed
            return {"value": float(len(key)), "by": os.getpid()}

        values[key] = cache.score(key, compute)
    return values


def test_many_shard_processes_compute_each_entry_once(tmp_path):
    log = tmp_path / "computed.log"
    start = time.time() + 1.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(SHARDS) as pool:
        results = pool.starmap(
            run_shard, [(str(tmp_path / "cache"), str(log), shard, start) for shard in range(SHARDS)]
        )
    computed = [line.split()[0] for line in log.read_text().splitlines()]
    expected = REFERENCE_ENTRIES + [key for shard in range(SHARDS) for key in own_entries(shard)]
    assert sorted(computed) == sorted(expected)  # each once, none twice, none lost
    # Every shard saw the one computed value of each shared entry, whoever computed it.
    for key in REFERENCE_ENTRIES:
        assert all(values[key] == results[0][key] for values in results)
