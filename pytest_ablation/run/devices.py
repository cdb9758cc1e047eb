"""Which device each worker uses.

The controller decides, the workers obey: the controller knows how many workers there are
and which GPUs are visible, and hands each worker its device through ``workerinput``.
Device names index into the GPUs this process can see, so a pre-set
``CUDA_VISIBLE_DEVICES=4,5`` makes ``cuda:1`` the physical GPU 5.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

AUTO = "auto"
_DEVICE = re.compile(r"^(cpu|cuda:(\d+))$")


class DeviceError(ValueError):
    pass


@dataclass(frozen=True)
class DeviceAssignment:
    device: str
    physical: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DeviceAssignment:
        return cls(**data)

    def describe(self) -> str:
        text = self.device
        if self.physical is not None and self.device.startswith("cuda"):
            text += f" (physical GPU {self.physical})"
        if self.threads:
            text += f", {self.threads} torch thread{'s' if self.threads > 1 else ''}"
        return text


def parse_devices(value: str) -> list[str] | str:
    """``auto``, ``cpu`` or a comma-separated list such as ``cuda:0,cuda:1``."""
    text = (value or "").strip()
    if text == AUTO:
        return AUTO
    names = [part.strip() for part in text.split(",")]
    bad = [name for name in names if not _DEVICE.match(name)]
    if not text or bad:
        shown = ", ".join(repr(b) for b in bad) or repr(value)
        raise DeviceError(
            f"--ablation-devices: {shown} is not a device; allowed: 'auto', 'cpu', or a "
            "comma-separated list such as 'cuda:0,cuda:1'"
        )
    return names


def gpus_from_environment(count: int) -> list[str]:
    """Physical ids of the ``count`` GPUs this process sees, honouring CUDA_VISIBLE_DEVICES."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    ids = [part.strip() for part in listed.split(",") if part.strip()]
    return ids[:count]


def torch_visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return gpus_from_environment(torch.cuda.device_count())


def resolve_devices(requested: list[str] | str, gpus: list[str]) -> list[str]:
    """The list of devices workers are dealt from, checked against the visible GPUs."""
    if requested == AUTO:
        return [f"cuda:{i}" for i in range(len(gpus))] or ["cpu"]
    for name in requested:
        if name.startswith("cuda:"):
            index = int(name.split(":", 1)[1])
            if index >= len(gpus):
                seen = os.environ.get("CUDA_VISIBLE_DEVICES")
                where = f" (CUDA_VISIBLE_DEVICES={seen})" if seen is not None else ""
                raise DeviceError(
                    f"--ablation-devices: {name} is beyond the {len(gpus)} visible "
                    f"GPU{'s' if len(gpus) != 1 else ''}{where}; allowed indices: "
                    + (f"0..{len(gpus) - 1}" if gpus else "none, use 'cpu'")
                )
    return list(requested)


def assign(
    devices: list[str], gpus: list[str], worker_index: int, workers: int = 1, cpus: int | None = None
) -> DeviceAssignment:
    """The device of worker ``worker_index`` of ``workers``: devices are dealt round-robin."""
    device = devices[worker_index % len(devices)]
    physical = None
    threads = None
    if device.startswith("cuda:"):
        physical = gpus[int(device.split(":", 1)[1])]
        # Each of several GPU workers gets its share of the cores for its CPU-side work
        # (decoding, metrics, data): by default torch would give every one of them all the
        # cores, and N workers would fight over them.
        if workers > 1:
            threads = max(1, (cpus or cpu_count()) // workers)
    else:
        # On the CPU every process computes with one torch thread: floating-point results of
        # torch's CPU kernels depend on the thread count, and a report must not depend on -n.
        # The cores are used by running one worker per core (-n auto) instead.
        threads = 1
    return DeviceAssignment(device=device, physical=physical, threads=threads)


def auto_worker_count(devices: list[str], cpus: int) -> int:
    """``-n auto``: one worker per listed GPU device, or one per core when all is on CPU.

    A GPU listed twice (``cuda:0,cuda:0``) gets two workers: that is how a large GPU is shared.
    """
    gpu_count = sum(1 for d in devices if d.startswith("cuda:"))
    return gpu_count if gpu_count else max(1, cpus)


def select_device(assignment: DeviceAssignment) -> None:
    """Make the worker's device torch's current one, before anything is loaded on it.

    Fails with the device and what this process sees when the GPU is not there (a worker
    started on another machine, a CPU-only torch build, a changed CUDA_VISIBLE_DEVICES).
    """
    import torch

    if assignment.threads:
        torch.set_num_threads(assignment.threads)
    if not assignment.device.startswith("cuda"):
        return
    index = int(assignment.device.split(":", 1)[1])
    available = torch.cuda.is_available()
    count = torch.cuda.device_count() if available else 0
    if index >= count:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f", CUDA_VISIBLE_DEVICES={seen}" if seen is not None else ""
        raise DeviceError(
            f"--ablation-devices: this process was given {assignment.device} but sees "
            f"{count} GPU{'s' if count != 1 else ''} (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda or 'none'}{where})"
        )
    # cuBLAS is deterministic only with a fixed workspace, which must be chosen before its
    # first call in the process (post-tuning also turns torch's deterministic mode on).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.cuda.set_device(index)
    # A report must not depend on -n or on which process ran what: cuDNN picks its
    # algorithms deterministically, and float32 stays float32 (no TF32 convolutions) so a
    # float32 profile on a GPU stays close to the same profile on the CPU. float16 and
    # bfloat16 profiles, the fast ones, are unaffected by TF32.
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    import torch

    kinds = {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
    return tuple(kind for kind in kinds if kind is not None)


# cuDNN and cuBLAS report a failed allocation (and most failures on a full device) as a
# RuntimeError with their status name, not as torch's OutOfMemoryError.
_LIBRARY_FAILURES = ("CUDNN_STATUS_", "CUBLAS_STATUS_", "CUDA out of memory", "CUDA error: out of memory")


def device_failure(error: BaseException) -> bool:
    """Whether ``error`` is the device running out of memory, or a cuDNN/cuBLAS failure."""
    if isinstance(error, out_of_memory_errors()):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in _LIBRARY_FAILURES)


def peak_memory(device: str) -> int | None:
    """Bytes torch allocated at most on ``device`` since the last reset, or None off CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.max_memory_allocated(device))


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats(device)


def format_bytes(count: int | None) -> str:
    if count is None:
        return "unknown"
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def describe_gpu(device: str) -> dict | None:
    """What a report records of a worker's GPU, since scores differ between GPUs and their
    software: its model, memory and compute capability, the driver's version, and the CUDA
    and cuDNN versions torch runs with. None on the CPU; a field that cannot be read is None."""
    if not device.startswith("cuda"):
        return None
    import torch

    def read(what):
        try:
            return what()
        except Exception:  # noqa: BLE001 - a description never fails a run
            return None

    properties = read(lambda: torch.cuda.get_device_properties(device))
    return {
        "name": read(lambda: torch.cuda.get_device_name(device)),
        "memory_bytes": getattr(properties, "total_memory", None),
        "capability": read(lambda: ".".join(map(str, torch.cuda.get_device_capability(device)))),
        "driver": _driver_version(),
        "cuda": torch.version.cuda,
        "cudnn": read(torch.backends.cudnn.version),
    }


def _driver_version() -> str | None:
    """The NVIDIA driver's version, from the kernel module (no NVML binding needed)."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]*)", text)
    return match.group(1) if match else None
