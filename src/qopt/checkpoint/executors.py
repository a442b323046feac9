"""Running the per-shard jobs: a process pool (default), Ray tasks or Dask distributed.

A job is a pure function of plain data (:mod:`qopt.checkpoint.convert`'s ``run_shard``
and ``shard_amax``), so any of these standard executors runs it; nothing here schedules.
``run_jobs`` yields the results as they complete. ``address`` connects Ray / Dask to an
existing cluster; without it a local one is started (Dask: a ``LocalCluster`` on
127.0.0.1; Ray: ``ray.init`` on this machine).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

EXECUTORS = ("process", "ray", "dask")


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    executor: str = "process",
    workers: int = 1,
    address: str | None = None,
) -> Iterator[Any]:
    """``fn(job)`` for every job, results in completion order."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")
    if executor == "process":
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield fn(job)
            return
        # spawn, not fork: a forked child inherits the JIT runtime's worker threads' locks
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(fn, job) for job in jobs]
            for future in as_completed(futures):
                yield future.result()
        return
    if executor == "ray":
        yield from _ray(fn, jobs, workers, address)
    else:
        yield from _dask(fn, jobs, workers, address)


def _ray(fn, jobs, workers, address):
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--executor ray needs the 'ray' package (pip install qopt[distributed])"
        ) from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(
                num_cpus=max(workers, 1), _node_ip_address="127.0.0.1", include_dashboard=False
            )
        started = True
    try:
        task = ray.remote(fn)
        pending = [task.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def _dask(fn, jobs, workers, address):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError(
            "--executor dask needs the 'distributed' package (pip install qopt[distributed])"
        ) from None
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            host="127.0.0.1",
            n_workers=max(workers, 1),
            threads_per_worker=1,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        futures = client.map(fn, list(jobs), pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
