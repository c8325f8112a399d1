"""The Dask clusters ``tsogpu batch`` runs on: a local cluster of one-thread worker processes,
an existing scheduler, SLURM through dask-jobqueue, one worker per GPU through dask-cuda; and
the run options each implies (threads and memory per segment).

Importing this module imports no cluster package: :func:`require` imports each where a
cluster is made, or names the pip extra that brings it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os

from .errors import ConfigError

log = logging.getLogger(__name__)

CLUSTERS = ("local", "slurm", "cuda")
# the pip extra that brings each cluster's package
EXTRAS = {"distributed": "dask", "dask_jobqueue": "slurm", "dask_cuda": "cuda-cluster"}


def require(module):
    """Import a cluster package, or a ConfigError naming the pip extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module, "dask")
        raise ConfigError(
            f"tsogpu batch needs the {module.replace('_', '-')} package ({exc}); "
            f"install it with: pip install 'tsogpu[{extra}]'"
        ) from None


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """What each SLURM job asks for; a job runs ``cores`` one-thread worker processes."""

    queue: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    memory: str = "16GB"
    cores: int = 4
    jobs: int = 1
    extra: tuple = ()  # more #SBATCH directives, e.g. "--gres=gpu:1"

    def cluster_kwargs(self):
        """Keyword arguments of ``dask_jobqueue.SLURMCluster``."""
        kwargs = {
            "cores": self.cores,
            "processes": self.cores,
            "memory": self.memory,
            "walltime": self.walltime,
            "job_extra_directives": list(self.extra),
        }
        if self.queue:
            kwargs["queue"] = self.queue
        if self.account:
            kwargs["account"] = self.account
        return kwargs


@contextlib.contextmanager
def connect(
    cluster="local",
    *,
    workers=None,
    scheduler=None,
    slurm=None,
    gpus=None,
    dashboard=None,
    log_level=logging.CRITICAL,
):
    """A ``distributed.Client`` on the cluster asked for; closes what it made on exit.

    Parameters
    ----------
    cluster : {"local", "slurm", "cuda"}
        ``local``: ``workers`` processes of one thread each (default: the usable cores);
        ``slurm``: ``dask_jobqueue.SLURMCluster`` scaled to ``slurm.jobs`` jobs; ``cuda``:
        ``dask_cuda.LocalCUDACluster``, one worker per GPU of ``gpus`` (e.g. "0,1"; default
        all).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); ``cluster`` is then unused.
    dashboard : str, optional
        Address of the dashboard (e.g. ":8787"); by default a free port (the scheduler
        always serves HTTP; 8787 may be another user's).
    log_level : int
        Level of the distributed package's own log (worker restarts, failed tasks) in the
        processes made here; each failure is reported in the summary anyway.
    """
    distributed = require("distributed")
    made = None
    if scheduler:
        try:
            client = distributed.Client(scheduler)
        except (OSError, ValueError) as exc:  # unreachable, timed out, a malformed address
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    else:
        if cluster == "local":
            from .memory import usable_cores

            made = distributed.LocalCluster(
                n_workers=workers or usable_cores(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=dashboard or ":0",
                silence_logs=log_level,
                preload=[__name__],  # dask_setup: Ctrl-C is the client's
            )
        elif cluster == "slurm":
            jobqueue = require("dask_jobqueue")
            slurm = slurm or SlurmOptions()
            made = jobqueue.SLURMCluster(
                **slurm.cluster_kwargs(),
                scheduler_options={"dashboard_address": dashboard or ":0"},
            )
            made.scale(jobs=slurm.jobs)
        elif cluster == "cuda":
            dask_cuda = require("dask_cuda")
            made = dask_cuda.LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=gpus,
                threads_per_worker=1,
                dashboard_address=dashboard or ":0",
                silence_logs=log_level,
                preload=[__name__],
            )
        else:
            raise ConfigError(f"--cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
        client = distributed.Client(made)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if made is not None:
            with contextlib.suppress(Exception):
                made.close()


def dask_setup(worker):
    """Worker preload of the local clusters: ignore SIGINT in the worker process.

    Ctrl-C at a terminal reaches every process of the group; the client then cancels the
    tasks and closes the cluster, and each worker would otherwise print a traceback.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def batch_config(config, cluster="local", workers=None, scheduler=None):
    """The config each task runs with: backend and threads suited to the cluster.

    On a local cluster of CPU workers the usable cores are shared among the workers
    (``--threads`` overrides), so workers x threads <= cores; elsewhere a worker is one
    thread (SLURM jobs run one process per core) unless ``--threads`` says. On the CUDA
    cluster the backend is cupy, one segment at a time per GPU.
    """
    from .memory import usable_cores

    if cluster == "cuda" and not scheduler:
        if config.backend == "numpy":
            raise ConfigError(
                "--cluster cuda runs one worker per GPU with --backend cupy; "
                "--backend numpy asks for the CPU (use --cluster local)"
            )
        return dataclasses.replace(config, backend="cupy")
    if config.backend == "cupy" and cluster == "local" and not scheduler:
        raise ConfigError(
            "--backend cupy on the local process cluster would put every worker on the same "
            "GPU; use --cluster cuda (one worker per GPU)"
        )
    if config.threads is None:
        share = max(1, usable_cores() // (workers or usable_cores()))
        threads = share if cluster == "local" and not scheduler else 1
        config = dataclasses.replace(config, threads=threads)
    # paths as the workers see them, whatever folder they start in
    refs = {
        t: p if str(p).strip().upper() == "N/A" else os.path.abspath(p)
        for t, p in config.refs.items()
    }
    return dataclasses.replace(config, refs=refs)
