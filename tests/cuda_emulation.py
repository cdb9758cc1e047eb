"""An emulated CUDA device with strict device checks, for machines without a GPU.

Tensors on ``cuda:N`` hold their data in CPU memory but report the CUDA device, and every
operation checks its inputs as CUDA kernels do, so a CPU-only machine sees the device
mistakes a GPU would raise:

- an operation mixing a ``cuda`` tensor with a CPU tensor (other than a 0-dimensional
  CPU scalar, which CUDA kernels accept, and the indices of an indexing operation);
- a random draw on a ``cuda`` tensor with a CPU ``torch.Generator``, or the reverse;
- ``.numpy()`` (and ``numpy.asarray``) of a ``cuda`` tensor;
- more memory than ``memory`` bytes live on one device: ``torch.cuda.OutOfMemoryError``.

``torch.cuda``'s questions (``is_available``, ``device_count``, ``set_device``, the memory
counters...) are answered as a machine with ``devices`` GPUs would. The memory counters
count the bytes of the live storages on each emulated device, so a test can see whether a
released model really left the device.

Use it in a test process (``with emulated_cuda(devices=2): ...``), or for a whole pytest
process, xdist workers included, as a plugin: ``PYTHONPATH=tests pytest -p cuda_emulation``
with ``EMULATED_CUDA_DEVICES`` (default 1) and ``EMULATED_CUDA_MEMORY`` (bytes; default
unlimited) in the environment.

What it cannot show: kernels' numerics (everything computes on the CPU), nondeterminism of
CUDA kernels, cuDNN/cuBLAS errors, asynchronous execution, and the real memory of a model
(no allocator caching, no workspace, no fragmentation).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from typing import Any
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

aten = torch.ops.aten

# Operations that may take tensors of several devices on CUDA.
_CROSS_DEVICE = {
    aten._to_copy.default,
    aten.copy_.default,
    aten._copy_from.default,
    aten._copy_from_and_resize.default,
    aten.lift_fresh.default,
    aten.lift_fresh_copy.default,
}
# Operations whose index tensors may live on the CPU (CUDA moves them).
_CPU_INDICES = {
    aten.index.Tensor,
    aten.index_put.default,
    aten.index_put_.default,
    aten._index_put_impl_.default,
}


class DeviceMismatch(RuntimeError):
    """What a CUDA kernel raises when its inputs are on different devices."""


class EmulatedCudaTensor(torch.Tensor):
    """A tensor on an emulated ``cuda:N``: CPU data (``elem``) behind a CUDA device.

    Python sees ``cuda:N`` (``.device``, ``.is_cuda``, ``.get_device()``); torch's C++ core
    sees the CPU, so autograd never asks a CUDA driver for its streams.
    """

    elem: torch.Tensor
    cuda_index: int

    @staticmethod
    def __new__(cls, elem: torch.Tensor, index: int):
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=elem.device,
            requires_grad=elem.requires_grad,
        )
        wrapper.elem = elem
        wrapper.cuda_index = index
        return wrapper

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.cuda_index)

    @property
    def is_cuda(self) -> bool:
        return True

    @property
    def is_cpu(self) -> bool:
        return False

    def get_device(self) -> int:
        return self.cuda_index

    def __repr__(self) -> str:
        return f"EmulatedCudaTensor({self.elem!r}, device='{self.device}')"

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        if _ACTIVE.emulator is None:
            raise RuntimeError(f"{func}: an emulated CUDA tensor outside the emulation")
        return _ACTIVE.emulator.dispatch(func, args, kwargs or {})


class _Active(threading.local):
    emulator: _Emulator | None = None


_ACTIVE = _Active()


def _cuda_index(device: Any, current: int) -> int | None:
    """The CUDA index ``device`` names (``"cuda"`` is the current one), or None off CUDA."""
    if device is None:
        return None
    if isinstance(device, int):
        return device
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return current if device.index is None else device.index


class _Memory:
    """Live bytes per emulated device, counted per storage, with a peak."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.allocated: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self._storages: dict[int, list] = {}  # storage address -> [device, bytes, wrappers]

    def track(self, tensor: EmulatedCudaTensor) -> None:
        storage = tensor.elem.untyped_storage()
        address, size = storage.data_ptr(), storage.nbytes()
        index = tensor.cuda_index
        entry = self._storages.get(address)
        if entry is None:
            used = self.allocated.get(index, 0)
            if self.limit is not None and used + size > self.limit:
                raise torch.cuda.OutOfMemoryError(
                    f"CUDA out of memory (emulated). Tried to allocate {size} bytes on "
                    f"cuda:{index}: {used} of {self.limit} bytes in use."
                )
            entry = self._storages[address] = [index, size, 0]
            self.allocated[index] = used + size
            self.peak[index] = max(self.peak.get(index, 0), self.allocated[index])
        entry[2] += 1
        weakref.finalize(tensor, self._untrack, address)

    def _untrack(self, address: int) -> None:
        entry = self._storages.get(address)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] == 0:
            del self._storages[address]
            self.allocated[entry[0]] -= entry[1]


class _Emulator:
    def __init__(self, devices: int, memory: int | None) -> None:
        self.devices = devices
        self.current = 0
        self.memory = _Memory(memory)

    # -- moving between the CPU and the emulated devices ---------------------------------
    def wrap(self, value: Any, index: int) -> Any:
        if isinstance(value, torch.Tensor) and not isinstance(value, EmulatedCudaTensor):
            wrapped = EmulatedCudaTensor(value, index)
            self.memory.track(wrapped)
            return wrapped
        return value

    def check_index(self, index: int) -> int:
        if not 0 <= index < self.devices:
            raise RuntimeError(f"CUDA error: invalid device ordinal (emulated: cuda:{index} of {self.devices} devices)")
        return index

    # -- every aten operation ----------------------------------------------------------
    def dispatch(self, func, args: tuple, kwargs: dict) -> Any:
        target = _cuda_index(kwargs.get("device"), self.current)
        scan = _Scan(func)
        unwrapped_args = tuple(scan.unwrap(value, position) for position, value in enumerate(args))
        unwrapped_kwargs = {name: scan.unwrap(value, -1) for name, value in kwargs.items()}
        if func not in _CROSS_DEVICE and len(scan.devices) > 1:
            raise DeviceMismatch(
                f"Expected all tensors to be on the same device, but found at least two "
                f"devices, {' and '.join(sorted(scan.devices))}! (when calling {func})"
            )
        emulated_index = scan.emulated_index
        generator = kwargs.get("generator")
        if generator is not None:
            output = target if target is not None else emulated_index
            if output is not None and generator.device.type != "cuda":
                raise RuntimeError(
                    f"Expected a 'cuda' device type for generator but found "
                    f"'{generator.device.type}' (when calling {func})"
                )
        if target is not None:
            self.check_index(target)
            unwrapped_kwargs["device"] = _CPU

        out = func(*unwrapped_args, **unwrapped_kwargs)

        if func is _TO_COPY and "device" in kwargs:
            # an explicit move: to the CPU (target None) returns the plain tensor
            return out if target is None else self.wrap(out, target)
        if target is None:
            if emulated_index is None:
                return out
            target = emulated_index
        if isinstance(out, torch.Tensor):
            # in-place operations return their (emulated) self
            if args and out is unwrapped_args[0] and isinstance(args[0], EmulatedCudaTensor):
                return args[0]
            return self.wrap(out, target)
        if isinstance(out, (tuple, list)):
            return type(out)(self.wrap(value, target) for value in out)
        return out


_CPU = torch.device("cpu")
_TO_COPY = aten._to_copy.default


class _Scan:
    """One pass over an operation's arguments: unwraps emulated tensors and notes devices."""

    __slots__ = ("devices", "emulated_index", "indices_at")

    def __init__(self, func) -> None:
        self.devices: set[str] = set()
        self.emulated_index: int | None = None
        # indexing operations take their index tensors (argument 1) from any device
        self.indices_at = 1 if func in _CPU_INDICES else None

    def unwrap(self, value: Any, position: int) -> Any:
        if isinstance(value, EmulatedCudaTensor):
            self.emulated_index = value.cuda_index
            self.devices.add(f"cuda:{value.cuda_index}")
            return value.elem
        if isinstance(value, torch.Tensor):
            if value.dim() != 0 and position != self.indices_at:
                self.devices.add(str(value.device))
            return value
        if isinstance(value, (list, tuple)) and value:
            return type(value)(self.unwrap(item, position) for item in value)
        return value


class _DispatchMode(TorchDispatchMode):
    def __init__(self, emulator: _Emulator) -> None:
        super().__init__()
        self.emulator = emulator

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.emulator.dispatch(func, args, kwargs or {})


_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
_HOST_READS = {
    torch.Tensor.tolist,
    torch.Tensor.item,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
    torch.Tensor.__bool__,
    torch.Tensor.__complex__,
}
_FROM_DATA = {torch.tensor, torch.as_tensor, torch.asarray, torch.Tensor}
F = torch.nn.functional
# torch's CUDA autocast policy, for the functions the studies call: these run in the
# autocast dtype, and these in float32. (On a real GPU autocast acts on every aten
# operation; here on the functions, before autograd records them.)
_AUTOCAST_LOWER = {
    F.linear,
    torch.matmul,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.mm,
    torch.bmm,
    torch.baddbmm,
    torch.addmm,
    torch.addbmm,
    torch.einsum,
    torch.conv1d,
    torch.conv2d,
    torch.conv3d,
    torch.conv_transpose1d,
    torch.conv_transpose2d,
    torch.conv_transpose3d,
    F.scaled_dot_product_attention,
    torch.prelu,
}
_AUTOCAST_FLOAT32 = {
    F.layer_norm,
    F.group_norm,
    torch.layer_norm,
    torch.group_norm,
    F.softmax,
    F.log_softmax,
    torch.softmax,
    torch.log_softmax,
    F.mse_loss,
    F.l1_loss,
    F.cross_entropy,
    F.cosine_similarity,
    torch.cosine_similarity,
}


def _cast_floating(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
        return value.to(dtype)
    return value


class _FunctionMode(TorchFunctionMode):
    """Before dispatch: ``"cuda"`` names the current device (a real CUDA build would ask the
    driver), ``.cuda()``/``.cpu()``/``.to()`` move between the CPU and the emulated devices,
    a CUDA tensor refuses ``.numpy()``, and CUDA autocast casts as on a GPU."""

    def __init__(self, emulator: _Emulator) -> None:
        super().__init__()
        self.emulator = emulator

    def _indexed(self, value: Any) -> Any:
        if isinstance(value, str) and value.split(":")[0] == "cuda":
            value = torch.device(value)
        if isinstance(value, torch.device) and value.type == "cuda":
            index = self.emulator.current if value.index is None else value.index
            return torch.device("cuda", self.emulator.check_index(index))
        return value

    def _to_host(self, tensor: EmulatedCudaTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        # C++ sees a CPU tensor, so .to("cpu") would be a no-op; the copy is explicit.
        return torch.ops.aten._to_copy.default(tensor, dtype=dtype or tensor.dtype, device=torch.device("cpu"))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = args[0] if args else None
        emulated = isinstance(first, EmulatedCudaTensor)
        if func in _NUMPY and emulated:
            raise TypeError(
                f"can't convert {first.device} device type tensor to numpy. Use Tensor.cpu() "
                "to copy the tensor to host memory first."
            )
        if func in _HOST_READS and emulated:  # CUDA copies to the host for these
            return func(first.elem, *args[1:], **kwargs)
        if func is torch.Tensor.cuda:
            device = args[1] if len(args) > 1 else kwargs.get("device")
            index = self.emulator.current if device is None else _cuda_index(device, self.emulator.current)
            return first.to(torch.device("cuda", self.emulator.check_index(index)))
        if func is torch.Tensor.cpu:
            return self._to_host(first) if emulated else func(*args, **kwargs)
        if func in _FROM_DATA and args and isinstance(args[0], (list, tuple)):
            # Python data holding CUDA scalars: read on the host, as torch does for CUDA.
            args = (tree_map(lambda v: v.elem if isinstance(v, EmulatedCudaTensor) else v, args[0]),) + tuple(args[1:])
        if "device" in kwargs:
            kwargs = dict(kwargs, device=self._indexed(kwargs["device"]))
            device = kwargs["device"]
            if func in _FROM_DATA and isinstance(device, torch.device) and device.type == "cuda":
                # Built from Python data on the host, then copied, as CUDA does.
                return func(*args, **dict(kwargs, device="cpu")).to(device)
        if func is torch.Tensor.to:
            args = tuple(self._indexed(a) for a in args)
            if emulated:
                options = {k: v for k, v in kwargs.items() if k != "copy"}
                device, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **options)
                if device is not None and device.type == "cpu":
                    return self._to_host(first, dtype)
        if torch.is_autocast_enabled("cuda"):
            if func in _AUTOCAST_LOWER:
                dtype = torch.get_autocast_dtype("cuda")
                args, kwargs = tree_map(lambda v: _cast_floating(v, dtype), (args, kwargs))
            elif func in _AUTOCAST_FLOAT32:
                args, kwargs = tree_map(lambda v: _cast_floating(v, torch.float32), (args, kwargs))
        return func(*args, **kwargs)


def _torch_cuda_patches(emulator: _Emulator) -> dict[str, Any]:
    memory = emulator.memory

    def index_of(device=None) -> int:
        if device is None:
            return emulator.current
        found = _cuda_index(device, emulator.current)
        return emulator.check_index(found if found is not None else emulator.current)

    def set_device(device) -> None:
        emulator.current = index_of(device)

    def reset_peak(device=None) -> None:
        index = index_of(device)
        memory.peak[index] = memory.allocated.get(index, 0)

    class Properties:
        def __init__(self, index: int) -> None:
            self.name = "Emulated CUDA device"
            self.total_memory = memory.limit or 80 * 2**30
            self.major, self.minor = 9, 0
            self.multi_processor_count = 1
            self.index = index

    return {
        "_lazy_init": lambda: None,
        "is_available": lambda: emulator.devices > 0,
        "is_initialized": lambda: True,
        "device_count": lambda: emulator.devices,
        "current_device": lambda: emulator.current,
        "set_device": set_device,
        "get_device_name": lambda device=None: f"Emulated CUDA device {index_of(device)}",
        "get_device_properties": lambda device=None: Properties(index_of(device)),
        "get_device_capability": lambda device=None: (9, 0),
        "is_bf16_supported": lambda *a, **k: True,
        "synchronize": lambda device=None: None,
        "empty_cache": lambda: None,
        "ipc_collect": lambda: None,
        "current_stream": lambda device=None: _Stream(index_of(device)),
        "is_current_stream_capturing": lambda: False,
        "manual_seed": lambda seed: None,
        "manual_seed_all": lambda seed: None,
        "memory_allocated": lambda device=None: memory.allocated.get(index_of(device), 0),
        "max_memory_allocated": lambda device=None: memory.peak.get(index_of(device), 0),
        "memory_reserved": lambda device=None: memory.allocated.get(index_of(device), 0),
        "max_memory_reserved": lambda device=None: memory.peak.get(index_of(device), 0),
        "reset_peak_memory_stats": reset_peak,
        "reset_max_memory_allocated": reset_peak,
        "mem_get_info": lambda device=None: (
            (memory.limit or 80 * 2**30) - memory.allocated.get(index_of(device), 0),
            memory.limit or 80 * 2**30,
        ),
    }


class _Stream:
    """The current stream, as far as a capture check asks: never capturing."""

    def __init__(self, index: int) -> None:
        self.device = torch.device("cuda", index)

    def is_capturing(self) -> bool:
        return False

    def synchronize(self) -> None:
        pass


def _accelerator_patches(emulator: _Emulator) -> dict[str, Any]:
    def set_index(index) -> None:
        emulator.current = emulator.check_index(_cuda_index(index, emulator.current))

    return {
        "is_available": lambda: emulator.devices > 0,
        "device_count": lambda: emulator.devices,
        "current_accelerator": lambda check_available=False: torch.device("cuda"),
        "current_device_index": lambda: emulator.current,
        "current_device_idx": lambda: emulator.current,
        "set_device_index": set_index,
        "set_device_idx": set_index,
        "current_stream": lambda device=None: _Stream(emulator.current),
        "synchronize": lambda device=None: None,
    }


@contextlib.contextmanager
def emulated_cuda(devices: int = 1, memory: int | None = None) -> Iterator[_Emulator]:
    """Within the block, this thread sees ``devices`` emulated CUDA GPUs (see the module)."""
    emulator = _Emulator(devices, memory)
    patches = [(torch.cuda, _torch_cuda_patches(emulator)), (torch.accelerator, _accelerator_patches(emulator))]
    saved = [(module, name, getattr(module, name, None)) for module, names in patches for name in names]
    previous = _ACTIVE.emulator
    # A module moved to the device gets new parameters (emulated tensors) rather than
    # CPU parameters whose data is swapped, which would still report the CPU.
    overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    for module, names in patches:
        for name, value in names.items():
            setattr(module, name, value)
    _ACTIVE.emulator = emulator
    try:
        with _FunctionMode(emulator), _DispatchMode(emulator):
            yield emulator
    finally:
        _ACTIVE.emulator = previous
        torch.__future__.set_overwrite_module_params_on_conversion(overwrite)
        for module, name, value in saved:
            if value is None:
                delattr(module, name)
            else:
                setattr(module, name, value)


def install_for_process() -> _Emulator:
    """Emulate CUDA for the rest of this process (the plugin's way), as the environment says."""
    devices = int(os.environ.get("EMULATED_CUDA_DEVICES") or 1)
    memory = os.environ.get("EMULATED_CUDA_MEMORY")
    context = emulated_cuda(devices, int(memory) if memory else None)
    emulator = context.__enter__()
    # Exited only as the process ends (or the pytest run, for the plugin).
    _PROCESS.append(context)
    atexit.register(uninstall_for_process)
    return emulator


def uninstall_for_process() -> None:
    while _PROCESS:
        _PROCESS.pop().__exit__(None, None, None)


_PROCESS: list = []


def pytest_configure(config) -> None:
    """As a plugin (``-p cuda_emulation``): the whole process, before anything loads."""
    if not _PROCESS:
        install_for_process()


def pytest_unconfigure(config) -> None:
    uninstall_for_process()
