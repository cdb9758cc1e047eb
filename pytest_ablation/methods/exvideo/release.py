"""Where the released ExSVD weights live (torch-free: model identities read it at start-up)."""

EXSVD_REPO = "ECNU-CILab/ExVideo-SVD-128f-v1"
EXSVD_FILE = "model.fp16.safetensors"
SVD_XT_REPO = "stabilityai/stable-video-diffusion-img2vid-xt"
