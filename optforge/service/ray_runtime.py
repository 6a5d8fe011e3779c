"""Connecting the service to Ray: an existing cluster (``RAY_ADDRESS``) or a local one it starts."""

from __future__ import annotations

import logging

import ray

log = logging.getLogger("optforge.service")


def connect_ray(address: str | None, *, cpus: int | None = None) -> bool:
    """Connect to Ray unless this process already is; return True when this call started the connection.

    With ``address`` it joins that cluster; without, it starts a local Ray sized to this machine. A
    process that already called ``ray.init`` (the test session, a notebook) keeps its connection.
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "log_to_driver": False,  # trial output belongs in the trial's record, not in the service's log
        "configure_logging": False,
    }
    if address:
        ray.init(address=address, **kwargs)
        log.info("connected to the Ray cluster at %s", address)
    else:
        ray.init(num_cpus=cpus, **kwargs)
        log.info("started a local Ray with %s CPUs", ray.cluster_resources().get("CPU", 0))
    return True


def ray_ready() -> str:
    """``"ok"``, or why Ray cannot take work (for ``/readyz``)."""
    if not ray.is_initialized():
        return "not connected"
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
    except Exception as exc:  # the GCS is gone: any error here means "not ready"
        return f"unreachable: {type(exc).__name__}"
    return "ok" if nodes else "no live nodes"
