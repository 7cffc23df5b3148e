"""Image transforms for re-ID training and testing, on torchvision transforms v2.

Training augmentation in the re-ID papers the course follows:

* resize to ``height × width`` (pedestrian crops are ~2:1; 256×128 in the papers, 128×64 in ``quick``);
* horizontal flip (people are roughly left-right symmetric);
* zero-pad ``pad`` pixels then random-crop back (small translations, as in Luo et al.'s
  "Bag of Tricks" baseline) — or DaRe's variant (Wang et al., CVPR 2018, Sec. 4): resize to
  ``resize_scale`` × the size (1.125) then random-crop ``height × width``;
* random erasing (Zhong et al., AAAI 2020, Alg. 1): with probability ``p`` a rectangle of area
  2–33 % and aspect 0.3–3.3 is filled; we fill it with the ImageNet mean pixel (0 after
  normalisation), as the strong-baseline code does, rather than random values;
* optional colour jitter and small rotations.

Test time: resize and normalise only. Mean/std are ImageNet's, since backbones are (pre-)trained
with them.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(height: int, width: int, is_train: bool, flip: bool = False, pad: int = 0,
                     random_crop: bool = False, random_erasing: float = 0.0, color_jitter: float = 0.0,
                     rotation: float = 0.0, resize_scale: float | None = None,
                     normalize: bool = True) -> v2.Compose:
    """A callable mapping a PIL image (or uint8 CHW tensor) to a float32 ``[3, height, width]`` tensor.

    Every augmentation is **off** unless asked for: a preset's ``train_aug`` gets exactly what it
    names (PCB's ``{"flip": True, ...}`` is flip only), never a hidden default.

    Args:
        height, width: output size.
        is_train: ``False`` → resize (+ normalise) only; every augmentation argument is ignored.
        flip: random horizontal flip, p = 0.5.
        pad: zero padding before the random crop (ignored when ``resize_scale`` is set).
        random_crop: pad-then-crop (or resize-up-then-crop with ``resize_scale``); with ``pad = 0``
            and no ``resize_scale`` there is nothing to crop, so it is an error.
        random_erasing: probability of erasing one rectangle (0 disables).
        color_jitter: strength ``s`` of brightness/contrast/saturation jitter in ``[1-s, 1+s]``;
            hue is left alone because clothing colour is identity evidence.
        rotation: maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        resize_scale: DaRe's augmentation: resize to ``round(scale·h) × round(scale·w)`` then crop.
        normalize: subtract ImageNet mean, divide by std.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    if not 0.0 <= random_erasing <= 1.0:
        raise ValueError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
    if color_jitter < 0 or rotation < 0 or pad < 0:
        raise ValueError(f"color_jitter, rotation and pad must be >= 0 (got {color_jitter}, {rotation}, {pad})")
    if resize_scale is not None and resize_scale < 1.0:
        raise ValueError(f"resize_scale must be >= 1 (it enlarges before cropping), got {resize_scale}")
    if is_train and random_crop and pad == 0 and resize_scale is None:
        raise ValueError("random_crop=True needs pad > 0 (pad-then-crop) or resize_scale (resize-up-then-crop): "
                         "with neither the crop is the whole image; give one, or random_crop=False")

    size = (height, width)
    ops: list = [v2.ToImage()]  # PIL → uint8 tv_tensors.Image; geometric ops then run on tensors
    if not is_train:
        ops.append(v2.Resize(size, antialias=True))
    else:
        if resize_scale is not None and random_crop:
            ops += [v2.Resize((round(height * resize_scale), round(width * resize_scale)), antialias=True),
                    v2.RandomCrop(size)]
        else:
            ops.append(v2.Resize(size, antialias=True))
            if random_crop and pad > 0:
                ops.append(v2.RandomCrop(size, padding=pad, fill=0))
        if flip:
            ops.append(v2.RandomHorizontalFlip(p=0.5))
        if rotation > 0:
            ops.append(v2.RandomRotation(degrees=rotation))
        if color_jitter > 0:
            ops.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter,
                                      saturation=color_jitter))
    # uint8 → float in [0, 1] (→ normalised), in one cheap in-place pass: v2.ToDtype + v2.Normalize
    # cost ~0.4 ms per 128×64 crop here, a real share of a CPU training step.
    ops.append(ToFloat(IMAGENET_MEAN if normalize else None, IMAGENET_STD if normalize else None))
    if is_train and random_erasing > 0:
        # Fill = the mean pixel: 0 once normalised, the mean itself otherwise.
        fill = 0.0 if normalize else list(IMAGENET_MEAN)
        ops.append(v2.RandomErasing(p=random_erasing, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=fill))
    return v2.Compose(ops)


class ToFloat(torch.nn.Module):
    """uint8 image ``[3, H, W]`` → plain float32 tensor in [0, 1], optionally ``(x - mean) / std``.

    Equivalent to ``v2.ToDtype(torch.float32, scale=True)`` + ``v2.Normalize(mean, std)`` +
    ``v2.ToPureTensor()``, with the constants built once instead of on every call.
    """

    def __init__(self, mean: tuple | None = None, std: tuple | None = None):
        super().__init__()
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.as_subclass(torch.Tensor)
        # never in place on the caller's tensor: uint8 → new float tensor; float → a copy
        x = x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32, copy=True)
        if self.mean is not None:
            x = x.sub_(self.mean).div_(self.std)
        return x

    def extra_repr(self) -> str:
        return "normalize=ImageNet" if self.mean is not None else "normalize=False"


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation (``[..., 3, H, W]``) and clamp to [0, 1], for display."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)
