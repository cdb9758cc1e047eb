"""Generation on a GPU: the UNet floor, the sampler, the whole harness, batching and memory.

    python benchmarks/bench_gpu.py                              # SD 1.5 and SVD-XT sizes, float16, cuda:0
    python benchmarks/bench_gpu.py --only zs2 --steps 50 --videos 8
    python benchmarks/bench_gpu.py --size tiny --device cpu --steps 2   # a quick run of the script itself
    python benchmarks/bench_gpu.py --steps 4 --videos 4 --batch 2 --repeats 3 --json out.json  # scripts/gpu-check's

Random weights built from the published configurations (nothing is downloaded): the compute
and memory of the real models. Printed, per method:

  unet-only     one UNet forward at the batch of one video (guidance branches x frames), x steps:
                the floor no sampler can beat
  batch 1       videos per second when the sampler makes one video per call
  batch B       videos per second with B videos per UNet call (the profile's batch_size); the
                speed-up over batch 1, target >= 1.5x at 512x512 on a large GPU
  peak memory   torch.cuda.max_memory_allocated over the batched run
  harness       (ZS² only) `pytest "ablations/test_zs2_tma.py::test_tma[mu=0.98]"` through the plugin
                (generation, 8-bit storage, scoring with a ViT-L-14 judge, report) on the same
                models and settings: seconds for the variant, and its overhead over the UNet
                floor, (harness - videos x unet-only) / (videos x unet-only), target <= 5% at
                SD 1.5 size. Model loading is taken out (the report records it). The harness runs
                the models in the floor's dtype (--dtype); the dtype the run recorded for its
                `sd` model is printed beside the figure, and a mismatch fails the script.

Each figure is printed with its dtype. --json PATH writes the figures (rewritten after each
method, so a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import functools
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OVERHEAD_TARGET = 0.05
BATCH_TARGET = 1.5

SIZES = {
    # method: (height, width, frames) per size
    "paper": {"zs2": (512, 512, 8), "exvideo": (576, 1024, 25)},
    "tiny": {"zs2": (64, 64, 4), "exvideo": (64, 64, 8)},
}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(device: str, call) -> float:
    synchronize(device)
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started


def median_time(device: str, call, repeats: int) -> float:
    call()  # warm-up: kernels chosen, memory pools filled
    return statistics.median(timed(device, call) for _ in range(repeats))


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: str) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def peak(device: str) -> str:
    if not device.startswith("cuda"):
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"


def zs2_models(size: str, device: str, dtype: str):
    if size == "tiny":
        from pytest_ablation.models.tiny import build_tiny_stable_diffusion

        return build_tiny_stable_diffusion(seed=0, device=device, dtype=dtype)
    from pytest_ablation.models.paper_scale import build_sd15_architecture

    return build_sd15_architecture(device=device, dtype=dtype)


def svd_models(size: str, device: str, dtype: str):
    if size == "tiny":
        from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

        return build_tiny_stable_video_diffusion(seed=0, device=device, dtype=dtype)
    from pytest_ablation.models.paper_scale import build_svd_xt_architecture

    return build_svd_xt_architecture(device=device, dtype=dtype)


def generators(count: int, offset: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(offset + i) for i in range(count)]


def throughput(device: str, make_batch, videos: int, batch: int) -> float:
    """Videos per second making ``videos`` videos ``batch`` at a time (after a warm-up)."""
    make_batch(min(batch, videos), 10_000)
    seconds = 0.0
    for start in range(0, videos, batch):
        size = min(batch, videos - start)
        seconds += timed(device, functools.partial(make_batch, size, start))
    return videos / seconds


def bench_zs2(args, device: str) -> dict:
    from pytest_ablation.methods.zs2 import ZS2Sampler, tma_installed

    height, width, frames = SIZES[args.size]["zs2"]
    sd = zs2_models(args.size, device, args.dtype)
    unet = sd.unet
    latents = torch.randn(2 * frames, unet.config.in_channels, height // 8, width // 8).to(device, unet.dtype)
    context = torch.randn(2 * frames, 77, unet.config.cross_attention_dim).to(device, unet.dtype)

    def step():
        with torch.no_grad(), tma_installed(unet, 0.98, frames):
            unet(latents, 500, encoder_hidden_states=context)

    unet_only = median_time(device, step, args.repeats) * args.steps
    sampler = ZS2Sampler(sd, frames=frames, steps=args.steps, height=height, width=width, progress=False)

    def make(size, offset):
        return sampler.sample_batch(
            [f"a prompt {offset + i}" for i in range(size)], generators=generators(size, offset)
        )

    single = throughput(device, make, args.videos, 1)
    reset_peak(device)
    batched = throughput(device, make, args.videos, args.batch)
    figures = {
        "method": "zs2",
        "size": f"{frames} frames {height}x{width}",
        "steps": args.steps,
        "dtype": dtype_name(unet.dtype),
        "unet_only_s": unet_only,
        "videos_per_s_batch1": single,
        "videos_per_s_batched": batched,
        "batch": args.batch,
        "peak_memory": peak(device),
        "peak_memory_bytes": peak_bytes(device),
    }
    sampler = sd = unet = None  # frees the device memory that the harness below needs
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if not args.no_harness:
        figures.update(harness(args, device, frames, height, width, unet_only, figures["dtype"]))
    return figures


def bench_exvideo(args, device: str) -> dict:
    from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet, scene_image

    height, width, frames = SIZES[args.size]["exvideo"]
    svd = svd_models(args.size, device, args.dtype)
    unet = extend_unet(copy.deepcopy(svd.unet) if args.size == "tiny" else svd.unet, max_frames=max(32, frames))
    unet.eval().requires_grad_(False)
    config = unet.config
    latents = torch.randn(2, frames, config.in_channels, height // 8, width // 8).to(device, unet.dtype)
    embeds = torch.randn(2, 1, config.cross_attention_dim).to(device, unet.dtype)
    time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2).to(device, unet.dtype)

    def step():
        with torch.no_grad():
            unet(latents, 1.0, encoder_hidden_states=embeds, added_time_ids=time_ids)

    unet_only = median_time(device, step, args.repeats) * args.steps
    sampler = ExVideoSampler(svd, unet, decode_chunk_size=8)

    def make(size, offset):
        gens = generators(size, offset)
        images = [scene_image(height, width, generator=g) for g in gens]
        return sampler.batch(images, generators=gens, frames=frames, steps=args.steps, guidance_scale=3.0)

    single = throughput(device, make, args.videos, 1)
    reset_peak(device)
    batched = throughput(device, make, args.videos, args.batch)
    return {
        "method": "exvideo",
        "size": f"{frames} frames {height}x{width}",
        "steps": args.steps,
        "dtype": dtype_name(unet.dtype),
        "unet_only_s": unet_only,
        "videos_per_s_batch1": single,
        "videos_per_s_batched": batched,
        "batch": args.batch,
        "peak_memory": peak(device),
        "peak_memory_bytes": peak_bytes(device),
    }


def harness(args, device, frames, height, width, unet_only, floor_dtype) -> dict:
    """The TMA study's reference variant through the plugin, on the same models and settings,
    in the floor's dtype (the judge stays float32, as the plugin always has it)."""
    prompts = [f"a prompt {i}" for i in range(args.videos)]
    if args.size == "tiny":
        models = textwrap.dedent(f"""
            [models.sd]
            kind = "tiny-stable-diffusion"
            dtype = "{floor_dtype}"

            [models.clip]
            kind = "tiny-open-clip"
        """)
    else:
        models = textwrap.dedent(f"""
            [models.sd]
            kind = "callable"
            source = "pytest_ablation.models.paper_scale:build_sd15_architecture"
            dtype = "{floor_dtype}"

            [models.clip]
            kind = "open-clip"
            name = "ViT-L-14"
        """)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        profile = folder / "bench.toml"
        profile.write_text(
            f'[profile]\nname = "bench-gpu"\n\n[settings]\nprompts = {json.dumps(prompts)}\nseeds = 1\n'
            f"frames = {frames}\nsteps = {args.steps}\nheight = {height}\nwidth = {width}\n"
            f"guidance_scale = 7.5\nfps = 8\nbatch_size = {args.batch}\n\n{models}"
        )
        junit = folder / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "ablations" / "test_zs2_tma.py") + "::test_tma[mu=0.98]",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--ablation-profile={profile}",
            f"--ablation-devices={device}",
            "--ablation-no-cache",
            f"--ablation-report-dir={folder / 'reports'}",
            f"--junitxml={junit}",
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"the harness run failed with exit status {done.returncode}")
        call = sum(float(case.get("time", 0)) for case in ElementTree.parse(junit).iter("testcase"))
        report = json.loads((folder / "reports" / "report.json").read_text())
    workers = report["environment"]["workers"].values()
    loading = sum(sum(w.get("load_seconds", {}).values()) for w in workers)
    # The dtype the run loaded its generator in, as it recorded it (the model kinds' default,
    # when the profile names none, is float32).
    recorded = {
        (w.get("models", {}).get("sd", {}).get("options") or {}).get("dtype") or "float32"
        for w in workers
        if "sd" in w.get("models", {})
    }
    variant = call - loading
    floor = args.videos * unet_only
    return {
        "harness_s": variant,
        "harness_overhead": (variant - floor) / floor,
        "harness_load_s": loading,
        "harness_dtype": ",".join(sorted(recorded)) or "unknown",
    }


def describe(figures: dict) -> str:
    dtype = figures["dtype"]
    lines = [
        f"{figures['method']}: {figures['size']}, {figures['steps']} steps",
        f"  unet-only      {figures['unet_only_s']:.3f} s per video (the floor), {dtype}",
        f"  batch 1        {figures['videos_per_s_batch1']:.3f} videos/s, {dtype}",
        f"  batch {figures['batch']:<8} {figures['videos_per_s_batched']:.3f} videos/s, "
        f"x{figures['videos_per_s_batched'] / figures['videos_per_s_batch1']:.2f} over batch 1 "
        f"(target >= {BATCH_TARGET}x at 512x512 on a large GPU), {dtype}",
        f"  peak memory    {figures['peak_memory']}, {dtype}",
    ]
    if "harness_s" in figures:
        same = figures["harness_dtype"] == dtype
        lines.append(
            f"  harness        {figures['harness_s']:.2f} s for the variant (models loaded in "
            f"{figures['harness_load_s']:.1f} s, not counted), overhead "
            f"{100 * figures['harness_overhead']:+.1f}% over the UNet floor (target <= {100 * OVERHEAD_TARGET:.0f}%), "
            f"harness {figures['harness_dtype']} vs floor {dtype}"
            + ("" if same else " (DTYPE MISMATCH: the overhead compares unlike runs)")
        )
    return "\n".join(lines)


def write_json(path: str | None, header: dict, figures: list[dict], errors: list[str]) -> None:
    if path is None:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps({**header, "figures": figures, "errors": errors}, indent=2) + "\n")
    partial.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument("--dtype", default=None, help="float16 on a GPU, float32 on the CPU by default")
    parser.add_argument("--only", choices=["zs2", "exvideo"], default=None)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per video (default 10)")
    parser.add_argument("--videos", type=int, default=8, help="videos per throughput measurement")
    parser.add_argument("--batch", type=int, default=4, help="videos per UNet call in the batched run")
    parser.add_argument("--repeats", type=int, default=5, help="timed UNet forwards (median)")
    parser.add_argument("--no-harness", action="store_true", help="skip the run through the plugin")
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="also write the figures as JSON (rewritten after each method)"
    )
    args = parser.parse_args()
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {device}: torch sees no CUDA GPU here; use --device cpu --size tiny to try the script"
        )
    args.dtype = args.dtype or ("float16" if device.startswith("cuda") else "float32")
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        name = torch.cuda.get_device_name(device)
    else:
        torch.set_num_threads(1)
        name = platform.processor() or platform.machine()
    print(
        f"bench_gpu: {name}, torch {torch.__version__}, {args.dtype}, {args.size} size, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}",
        flush=True,
    )
    header = {
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "dtype": args.dtype,
        "size": args.size,
        "steps": args.steps,
        "videos": args.videos,
        "batch": args.batch,
        "repeats": args.repeats,
    }
    results: list[dict] = []
    errors: list[str] = []
    write_json(args.json, header, results, errors)
    with torch.inference_mode(False):
        for method, bench in (("zs2", bench_zs2), ("exvideo", bench_exvideo)):
            if args.only not in (None, method):
                continue
            # One method failing (out of memory, say) still leaves the other's figures.
            try:
                figures = bench(args, device)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - reported, then the exit status says it
                traceback.print_exc()
                errors.append(f"{method}: {type(error).__name__}: {error}")
                print(f"{method}: FAILED: {type(error).__name__}: {error}", flush=True)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
            else:
                results.append(figures)
                print(describe(figures), flush=True)
                if figures.get("harness_dtype", figures["dtype"]) != figures["dtype"]:
                    errors.append(
                        f"{method}: the harness ran in {figures['harness_dtype']}, the floor in {figures['dtype']}"
                    )
            write_json(args.json, header, results, errors)
    if errors:
        raise SystemExit("bench_gpu: " + "; ".join(errors))


if __name__ == "__main__":
    main()
