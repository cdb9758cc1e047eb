"""What ZS²'s two parts cost: TMA's UNet step against plain attention, and the noise search
against the sampling it starts.

    python benchmarks/bench_zs2.py                       # the tiny profile's models and size
    python benchmarks/bench_zs2.py --setting sd15        # SD 1.5's UNet, 8 frames at 256x256
    python benchmarks/bench_zs2.py --setting sd15 --size 512 --device cuda

Printed:
  UNet step  one UNet forward over 2 guidance branches x F frames, with diffusers'
             AttnProcessor2_0 everywhere, then with TMA (mu = 0.98) on every attn1; the ratio
             TMA / AttnProcessor2_0, target <= 1.10. Runs alternate and the medians are
             compared. On a CPU, times are the process's CPU time (use --threads 1 for
             figures that other processes on the machine do not disturb).
  noise      the two-stage search (and the others) for one video's initial latents, as a
             share of the time to sample that video, target <= 1%. `tiny` times whole
             videos of ZS2Sampler at the tiny profile's settings (3 steps); `sd15` takes
             the sampling time as steps x the UNet step measured above (50 steps), a lower
             bound, so the printed share is an upper bound.

Random weights throughout (nothing is downloaded): the compute is that of the real models.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

STEP_TARGET = 1.10
NOISE_TARGET = 0.01


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    # On a CPU, the process's CPU time: other processes sharing the cores then slow the
    # wall clock but not the count, so the ratios hold on a busy machine too. On a GPU, the
    # wall clock between synchronisations.
    clock = time.perf_counter if device.startswith("cuda") else time.process_time
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


def build_unet(setting: str, device: str):
    if setting == "tiny":
        from pytest_ablation.models.tiny import build_tiny_stable_diffusion

        sd = build_tiny_stable_diffusion(seed=0, device=device)
        return sd.unet, sd.text_encoder.config.hidden_size, sd
    from diffusers import UNet2DConditionModel

    from pytest_ablation.models.paper_scale import SD15_UNET

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**SD15_UNET)
    return unet.to(device).eval().requires_grad_(False), 768, None


def bench_step(unet, context_dim: int, frames: int, latent: int, repeats: int, device: str) -> dict:
    from diffusers.models.attention_processor import AttnProcessor2_0

    from pytest_ablation.methods.zs2 import install_tma

    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2 * frames, 4, latent, latent, generator=generator).to(device)
    context = torch.randn(2 * frames, 77, context_dim, generator=generator).to(device)

    def step():
        with torch.no_grad():
            unet(sample, 500, encoder_hidden_states=context)

    def plain():
        unet.set_attn_processor(AttnProcessor2_0())

    def tma():
        unet.set_attn_processor(AttnProcessor2_0())
        install_tma(unet, 0.98, frames)

    times: dict[str, list[float]] = {"plain": [], "tma": []}
    for setup in (plain, tma):  # warm-up, both paths
        setup()
        step()
    for _ in range(repeats):
        for name, setup in (("plain", plain), ("tma", tma)):
            setup()
            times[name].append(timed(step, device))
    plain()
    base, ours = statistics.median(times["plain"]), statistics.median(times["tma"])
    return {"plain_s": base, "tma_s": ours, "ratio": ours / base}


def bench_noise(shape: tuple, repeats: int) -> dict[str, float]:
    from pytest_ablation.methods.zs2 import dependency_noise, independent_noise, mixed_noise

    runs = {
        "two_stage": lambda g: dependency_noise(shape, 0.1, "two_stage", g),
        "random": lambda g: dependency_noise(shape, 0.1, "random", g),
        "analytic": lambda g: dependency_noise(shape, 0.1, "analytic", g),
        "independent": lambda g: independent_noise(shape, g),
        "mixed": lambda g: mixed_noise(shape, 1.0, g),
    }
    out = {}
    for name, run in runs.items():
        run(torch.Generator().manual_seed(0))
        out[name] = statistics.median(
            timed(lambda run=run, i=i: run(torch.Generator().manual_seed(i)), "cpu") for i in range(repeats)
        )
    return out


def tiny_video_seconds(sd, repeats: int) -> float:
    from pytest_ablation.methods.zs2 import ZS2Sampler
    from pytest_ablation.profiles import load_profile

    settings = load_profile("tiny").settings
    sampler = ZS2Sampler(
        sd,
        frames=settings.frames,
        steps=settings.steps,
        height=settings.height,
        width=settings.width,
        guidance_scale=settings.guidance_scale,
        progress=False,
    )
    sampler(settings.prompts[0])
    return statistics.median(timed(lambda i=i: sampler(settings.prompts[0], seed=i), "cpu") for i in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--frames", type=int, default=None, help="default: 4 (tiny), 8 (sd15)")
    parser.add_argument("--size", type=int, default=None, help="pixels; default: 64 (tiny), 256 (sd15)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps; default 3 (tiny), 50 (sd15)")
    parser.add_argument("--repeats", type=int, default=None, help="timed UNet steps per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = args.setting == "tiny"
    frames = args.frames or (4 if tiny else 8)
    size = args.size or (64 if tiny else 256)
    steps = args.steps or (3 if tiny else 50)
    repeats = args.repeats or (30 if tiny else 3)
    latent = size // 8

    print(
        f"ZS² benchmark, setting {args.setting}: {frames} frames at {size}x{size}, "
        f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    unet, context_dim, sd = build_unet(args.setting, args.device)
    step = bench_step(unet, context_dim, frames, latent, repeats, args.device)
    verdict = "ok" if step["ratio"] <= STEP_TARGET else "ABOVE TARGET"
    print(
        f"UNet step, batch {2 * frames}: AttnProcessor2_0 {step['plain_s'] * 1e3:.1f} ms, "
        f"TMA {step['tma_s'] * 1e3:.1f} ms; ratio {step['ratio']:.3f} "
        f"(target <= {STEP_TARGET:.2f}: {verdict})"
    )

    noise = bench_noise((1, frames, 4, latent, latent), repeats=50)
    if tiny:
        sampling = tiny_video_seconds(sd, repeats=10)
        what = f"one ZS² video ({steps} steps, measured)"
    else:
        sampling = steps * step["tma_s"]
        what = f"{steps} UNet steps (a lower bound of sampling)"
    share = noise["two_stage"] / sampling
    verdict = "ok" if share <= NOISE_TARGET else "ABOVE TARGET"
    print(
        f"noise search (two-stage) {noise['two_stage'] * 1e3:.2f} ms vs {what} "
        f"{sampling * 1e3:.0f} ms: {100 * share:.2f}% "
        f"(target <= {100 * NOISE_TARGET:.0f}%: {verdict})"
    )
    others = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in noise.items() if k != "two_stage")
    print(f"  other initial noises: {others}")


if __name__ == "__main__":
    main()
