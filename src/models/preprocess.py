"""Scene -> localizer input, shared by the prepare stage and the PlateReader."""

import numpy as np
from PIL import Image

PAD_VALUE = 0  # the letterbox border (only non-square scenes get one)


def fit_square(image: Image.Image, size: int) -> tuple[np.ndarray, float]:
    """Shrink a grayscale image so its longer side is `size`, paste it top-left on a square.

    Returns the (size, size) uint8 array and the scale factor: model pixel = scene pixel * scale.
    Top-left placement keeps the mapping a pure scale, so corners map back by dividing.
    """
    if image.mode != "L":
        image = image.convert("L")
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = image.resize((new_w, new_h), Image.BILINEAR, reducing_gap=None)
    out = np.full((size, size), PAD_VALUE, dtype=np.uint8)
    out[:new_h, :new_w] = np.asarray(resized)
    # Per-axis scales differ from `scale` by rounding; use the longer side's exact one.
    return out, (new_w / width if width >= height else new_h / height)
