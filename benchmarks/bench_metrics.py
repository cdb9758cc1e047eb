"""What scoring a video costs, next to what generating it costs.

    python benchmarks/bench_metrics.py            # both settings, about 6 minutes on 2 idle cores
    python benchmarks/bench_metrics.py --only small

For each setting it times every metric on its own (a fresh MetricInput, so a CLIP metric pays
for its own image features) and all of them together (one MetricInput, features shared),
and compares that with an estimate of the generation time of the same video: one UNet
forward pass over frames x 2 classifier-free-guidance branches, timed, times the number of
denoising steps. The estimate leaves out the text encoder, the VAE decoder and the scheduler,
so it is a lower bound of generation time and the printed ratio an upper bound.

Settings:
  small  4 frames 64x64, the tiny profile's size: the `pytest-ablation-tiny` CLIP judge and
         the tiny profile's UNet (8x8 latents), its 3 steps.
  large  25 frames 512x512: a ViT-B-32 CLIP built from open_clip's own config with random
         weights (the same compute as the released one) and Stable Diffusion 1.5's UNet
         architecture with random weights (64x64 latents), 25 DDIM steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from pytest_ablation.metrics import ClipModel, MetricInput, get_metric, metric_names

TARGET = 0.10  # all metrics together, as a fraction of generation time

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
)


def tiny_unet_config() -> tuple[dict, str]:
    try:
        from pytest_ablation.models.tiny import TINY_SD_CONFIG
    except ImportError:
        # The tiny profile's layout, should its module be unavailable.
        return (
            dict(
                sample_size=8,
                in_channels=4,
                out_channels=4,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                block_out_channels=(32, 64),
                layers_per_block=1,
                cross_attention_dim=32,
                attention_head_dim=8,
                norm_num_groups=32,
            ),
            "tiny SD UNet (built-in copy of the tiny profile's config)",
        )
    return dict(TINY_SD_CONFIG["unet"]), "tiny profile UNet (pytest_ablation.models.tiny)"


@dataclass
class Setting:
    name: str
    frames: int
    size: int
    clip_name: str
    clip_label: str
    unet_config: dict
    unet_label: str
    steps: int


def synthetic_video(frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """A smooth texture panning right by size/64 px per frame, with light sensor noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, size // 8), max(2, size // 8), generator=g)
    texture = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")[0]
    step = max(1, size // 64)
    video = torch.stack([torch.roll(texture, shifts=t * step, dims=-1) for t in range(frames)])
    video = video + 0.01 * torch.randn(video.shape, generator=g)
    return (video.clamp(0, 1) * 255).round() / 255


def median_time(fn, repeats: int, min_seconds: float = 1.0) -> float:
    """Median of at least ``repeats`` runs, and of enough runs to fill ``min_seconds``."""
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_metrics(video, clip, prompt, repeats) -> tuple[dict[str, float], float]:
    names = metric_names()

    def fresh() -> MetricInput:
        return MetricInput(video, text=prompt, image=video[0], clip=clip)

    def one(name):
        return lambda: get_metric(name).evaluate(fresh())

    def together():
        inp = fresh()
        for name in names:
            get_metric(name).evaluate(inp)

    # Warm-up: lazy imports and first calls. It also leaves the prompt's text features in the
    # judge's cache, as after the first video of a prompt in a study.
    together()
    per_metric = {name: median_time(one(name), repeats) for name in names}
    return per_metric, median_time(together, repeats)


def time_unet_forward(config: dict, batch: int, chunk: int, latent: int, samples: int) -> float:
    """Seconds for one forward over ``batch`` samples; only ``samples`` of them are run and
    the time scaled up when ``samples < batch`` (the cost is linear in batch at these sizes).
    """
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**config).eval()
    cross = unet.config.cross_attention_dim
    x = torch.randn(min(chunk, batch), unet.config.in_channels, latent, latent)
    text = torch.randn(min(chunk, batch), 77, cross)
    t = torch.tensor(500)

    def forward() -> None:
        done = 0
        while done < samples:
            n = min(chunk, samples - done)
            unet(x[:n], t, encoder_hidden_states=text[:n])
            done += n

    with torch.no_grad():
        unet(x[:1], t, encoder_hidden_states=text[:1])  # warm-up
        # Small UNets are timed over repeated passes; Stable Diffusion's takes minutes, once.
        return median_time(forward, repeats=1, min_seconds=2.0) * batch / samples


def run(setting: Setting, args) -> None:
    print(f"\n== {setting.name}: {setting.frames} frames {setting.size}x{setting.size} ==")
    clip = ClipModel.from_open_clip(setting.clip_name, seed=0)
    print(f"CLIP judge: {setting.clip_label}")
    video = synthetic_video(setting.frames, setting.size)
    per_metric, together = time_metrics(video, clip, "a panning shot", args.repeats)

    batch = 2 * setting.frames
    latent = setting.size // 8
    print(
        f"Generation estimate: {setting.unet_label}, one forward over {setting.frames} frames"
        f" x 2 guidance branches = batch {batch} at {latent}x{latent} latents"
        f" (chunks of {args.chunk})..."
    )
    samples = min(batch, args.unet_samples or batch)
    forward = time_unet_forward(setting.unet_config, batch, args.chunk, latent, samples)
    if samples < batch:
        print(f"  (timed {samples} of the {batch} samples, scaled up linearly)")
    generation = forward * setting.steps
    print(
        f"  UNet forward {forward:.3f} s x {setting.steps} steps = {generation:.2f} s "
        "(an estimate: text encoder, VAE decoder and scheduler left out)"
    )

    width = max(map(len, per_metric))
    print(f"\n  {'metric':<{width}}  {'time':>10}  {'/ generation':>12}")
    for name, seconds in per_metric.items():
        print(f"  {name:<{width}}  {seconds * 1e3:8.1f} ms  {seconds / generation:12.3%}")
    ratio = together / generation
    print(f"  {'all together':<{width}}  {together * 1e3:8.1f} ms  {ratio:12.3%}")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"  all metrics = {ratio:.3%} of generation time: {verdict} the <= {TARGET:.0%} target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["small", "large"], help="run one setting")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps, large setting")
    parser.add_argument(
        "--small-steps",
        type=int,
        default=3,
        help="denoising steps, small setting (default: the tiny profile's 3)",
    )
    parser.add_argument("--chunk", type=int, default=10, help="UNet batch chunk, to bound memory")
    parser.add_argument(
        "--unet-samples",
        type=int,
        default=None,
        help="time only this many samples of the UNet batch and scale up (default: all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); 1 gives steadier figures on a busy machine",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tiny_config, tiny_label = tiny_unet_config()
    settings = {
        "small": Setting(
            "small",
            4,
            64,
            "pytest-ablation-tiny",
            "pytest-ablation-tiny (random weights)",
            tiny_config,
            tiny_label,
            args.small_steps,
        ),
        "large": Setting(
            "large",
            25,
            512,
            "ViT-B-32",
            "ViT-B-32 from open_clip's config, random weights (same compute as the released one)",
            SD15_UNET,
            "Stable Diffusion 1.5 UNet architecture, random weights",
            args.steps,
        ),
    }
    print(
        f"CPU: {os.cpu_count()} cores {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; python {sys.version.split()[0]}; "
        f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews timings)"
    )
    for name in settings:
        if args.only in (None, name):
            run(settings[name], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
