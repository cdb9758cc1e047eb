"""ExVideo's cost: UNet step time extended over plain at 25 frames, and post-tuning throughput.

    python benchmarks/bench_exvideo.py                       # the tiny profile's toy SVD, CPU
    python benchmarks/bench_exvideo.py --model svd-xt --width 160   # SVD-XT's layout, half width
    python benchmarks/bench_exvideo.py --model svd-xt --device cuda --size 576x1024

Step time: one UNet call on both guidance branches of 25 frames (random weights, the
profile's 64x64 unless --size), median of --repeats after a warm-up. Ratios are against the
same UNet before patching: ``static`` with the identity convolution (ExVideo's extra work)
and without it (the patched forward alone). Targets: <= 1.15 with the conv, <= 1.02 without.
Post-tuning throughput: video frames through forward and backward per second, with the
tiny recipe's clips (32 frames at 32x32), batch 1, with and without gradient checkpointing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch


def build(model: str, width: int, device: str):
    from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

    if model == "tiny":
        components = build_tiny_stable_video_diffusion(seed=0)
        return components.unet.to(device), components
    from pytest_ablation.methods.exvideo.convert import SVD_XT_UNET_CONFIG
    from diffusers import UNetSpatioTemporalConditionModel

    scale = width / 320
    config = dict(SVD_XT_UNET_CONFIG)
    config["block_out_channels"] = [int(c * scale) for c in config["block_out_channels"]]
    config["num_attention_heads"] = [max(1, int(h * scale)) for h in config["num_attention_heads"]]
    with torch.device(device):
        unet = UNetSpatioTemporalConditionModel(**config)
    return unet.eval().requires_grad_(False), None


def step_timer(unet, frames: int, height: int, width: int, device: str):
    g = torch.Generator().manual_seed(0)
    cross = unet.config.cross_attention_dim
    sample = torch.randn(2, frames, 8, height // 8, width // 8, generator=g).to(device)
    context = torch.randn(2, 1, cross, generator=g).to(device)
    ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device=device)
    t = torch.tensor(1.0, device=device)

    def once() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.no_grad():
            unet(sample, t, encoder_hidden_states=context, added_time_ids=ids)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started

    return once


def compare(unet, frames: int, height: int, width: int, repeats: int, device: str) -> dict[str, float]:
    """Median step time of each configuration, measured in interleaved rounds on one UNet, so
    that drifting machine load and warm-up fall on every configuration alike."""
    from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

    from pytest_ablation.methods.exvideo import ExTransformerSpatioTemporalModel, extend_unet, temporal_transformers

    max_frames = max(frames, 25)
    extend_unet(unet, max_frames, position="trainable", identity_conv=True)
    modules = [m for _, m in temporal_transformers(unet)]
    tables = [m.time_proj for m in modules]
    convs = [m.position_conv for m in modules]
    extend_unet(unet, max_frames, position="static", identity_conv=False)
    sinusoids = [m.time_proj for m in modules]

    def configure(name: str) -> None:
        for m, table, conv, sinusoid in zip(modules, tables, convs, sinusoids):
            # "plain": diffusers' own forward (the static sinusoid is SVD's time_proj).
            m.__class__ = TransformerSpatioTemporalModel if name == "plain" else ExTransformerSpatioTemporalModel
            m.time_proj = table if name == "trainable + conv" else sinusoid
            m.exvideo_position = "trainable" if name == "trainable + conv" else "static"
            m.position_conv = conv if name in ("static + conv", "trainable + conv") else None

    names = ["plain", "static, no conv", "static + conv", "trainable + conv"]
    timer = step_timer(unet, frames, height, width, device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats + 1):
        for name in names:
            configure(name)
            seconds = timer()
            if round_:  # the first round warms up
                times[name].append(seconds)
    configure("trainable + conv")
    return {name: statistics.median(values) for name, values in times.items()}


def tiny_recipe():
    """The post-tuning recipe of the tiny profile."""
    from pytest_ablation.methods.exvideo import exvideo_on_profile
    from pytest_ablation.profiles import load_profile

    return exvideo_on_profile(load_profile("tiny")).recipe


def tuning_throughput(components, steps: int, checkpointing: bool) -> float:
    from pytest_ablation.methods.exvideo import encode_videos, extend_unet, moving_shapes, post_tune

    r = tiny_recipe()
    clips = moving_shapes(r.clips, r.frames, r.height, r.width, generator=torch.Generator().manual_seed(0))
    data = encode_videos(components, clips)
    unet = extend_unet(copy.deepcopy(components.unet), r.max_frames)
    post_tune(unet, data, 1, components=components, lr=r.lr)  # warm-up
    result = post_tune(unet, data, steps, components=components, lr=r.lr, gradient_checkpointing=checkpointing)
    return result.frames_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "svd-xt"], default="tiny")
    parser.add_argument("--width", type=int, default=320, help="svd-xt: first level's channels (320: real)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="64x64", help="video height x width in pixels")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--tuning-steps", type=int, default=8)
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    height, width = (int(v) for v in options.size.split("x"))

    unet, components = build(options.model, options.width, options.device)
    times = compare(unet, options.frames, height, width, options.repeats, options.device)
    plain = times["plain"]
    what = f"{options.model}" + (f" width {options.width}" if options.model == "svd-xt" else "")
    print(
        f"UNet step, {what}, {options.frames} frames x 2 branches at {height}x{width}, "
        f"{options.device}, {torch.get_num_threads()} thread(s), median of {options.repeats}:"
    )
    targets = {"static, no conv": " (target <= 1.02)", "static + conv": " (target <= 1.15)"}
    for name, seconds in times.items():
        ratio = "" if name == "plain" else f"   ratio {seconds / plain:.3f}{targets.get(name, '')}"
        print(f"  {name:<18}: {seconds * 1000:9.1f} ms{ratio}")
    if options.model == "tiny" and options.tuning_steps > 0:
        r = tiny_recipe()
        for checkpointing in (False, True):
            fps = tuning_throughput(components, options.tuning_steps, checkpointing)
            print(
                f"post-tuning, tiny recipe ({r.frames} frames, {r.height}x{r.width}, batch {r.batch_size}), "
                f"{'with' if checkpointing else 'no'} gradient checkpointing: {fps:7.1f} frames/s"
            )


if __name__ == "__main__":
    main()
