"""Sample and prediction images for DVCLive (out/<...>/plots/images/*.png)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

GREEN, RED, BLUE = (0, 200, 0), (230, 0, 0), (0, 120, 255)


def overlay(scene: np.ndarray, quads=(), caption: str = "", caption_color=(255, 255, 255),
            crop: np.ndarray | None = None, scale: int = 2) -> Image.Image:
    """Scene (H, W) uint8, upscaled, with quads [(corners (4, 2), colour)], an optional crop
    pasted under it and a caption line: what a person needs to judge one prediction."""
    img = Image.fromarray(scene).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for corners, color in quads:
        if corners is None:
            continue
        points = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(corners)]
        draw.line(points + points[:1], fill=color, width=2)
        x, y = points[0]
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=color)  # marks the top-left corner
    rows = [img]
    if crop is not None:
        c = Image.fromarray(crop).convert("RGB")
        rows.append(c.resize((c.width * 2, c.height * 2), Image.NEAREST))
    width = max(r.width for r in rows)
    height = sum(r.height for r in rows) + (18 if caption else 0)
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    y = 0
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height
    if caption:
        ImageDraw.Draw(canvas).text((4, y + 3), caption, fill=caption_color)
    return canvas


def log_images(live_dir: str, images: dict[str, Image.Image]) -> None:
    """Write named images with DVCLive into live_dir/plots/images (no metrics, no dvc.yaml)."""
    from dvclive import Live

    live = Live(dir=live_dir, save_dvc_exp=False, dvcyaml=None, report=None)
    for name, image in images.items():
        live.log_image(name, image)
