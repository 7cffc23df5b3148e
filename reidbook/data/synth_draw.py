"""SynthReID drawing: one pedestrian crop from an identity, a camera and a random generator.

The generator in :mod:`reidbook.data.synthetic` decides *who* is seen *where*; this module decides
what the crop looks like. A crop is drawn in four steps, each one a nuisance real re-ID data has:

1. **background** — a window of the camera's own street scene (walls, ground, poles, windows, shops)
   at a random place and scale, plus per-image clutter, tone, texture and shadow; each camera has its
   own palette and clutter density, but no two crops share one background;
2. **person** — a parametric pedestrian drawn with ``PIL.ImageDraw`` capsules and polygons, seen from
   the front, the back or a side; *what is visible depends on the viewpoint* (a chest mark only from
   the front, a backpack fully from the back and partly from a side, only its straps from the front);
   pose jitter (stride, arm swing, lean) and a misaligned bounding box (shift and scale);
3. **occluders** — a pole, a low obstacle (bench / car / bush) or a passer-by in front;
4. **camera** — resolution loss, blur, illumination and colour cast, contrast, gamma, sensor noise;
   the caller encodes the result as a JPEG with the camera's quality.

Every shape of the person is drawn twice: in colour, and into a part-label map
(:data:`PART_NAMES`) that occluders clear; :func:`downsample_labels` brings it to the output size.
Everything is drawn at ``supersample``× the output size and box-filtered down (cheap anti-aliasing).
Coordinates of the person are in units of the person's height ``Hp`` from its top-centre, so the
same description draws at 128×64 and at 256×128. All randomness comes from the ``rng`` passed in, so
a crop is a pure function of (identity, camera, per-image seed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
VIEWS = ("front", "back", "left", "right")

# The body-part label map written beside every SynthReID image (``masks/``): 0 is background (also
# whatever hides the person: a pole, a bench, a passer-by in front), anything else is the person.
# Neck, hair and hat count as head; hands as arms; hips, skirt and shorts as legs; shoes are feet;
# backpack, shoulder bag (and straps) and a hand-carried item are "bag".
PART_NAMES: tuple[str, ...] = ("background", "head", "torso", "arms", "legs", "feet", "bag")
PART_LABELS: dict[str, int] = {name: i for i, name in enumerate(PART_NAMES)}

# Named colours. "easy" colours are saturated and distinctive; "hard" ones are the dark, grey and
# muted clothes most real pedestrians wear, where a colour histogram cannot tell people apart.
EASY_COLORS: dict[str, RGB] = {
    "red": (210, 25, 30), "orange": (240, 125, 20), "yellow": (240, 215, 40), "lime": (150, 210, 40),
    "green": (30, 150, 60), "teal": (15, 140, 140), "cyan": (60, 200, 230), "blue": (30, 60, 200),
    "purple": (115, 45, 175), "pink": (245, 130, 185), "magenta": (200, 30, 140), "white": (235, 235, 230),
}
HARD_COLORS: dict[str, RGB] = {
    "black": (22, 22, 25), "charcoal": (50, 50, 55), "grey": (100, 100, 104), "navy": (30, 36, 70),
    "dark brown": (62, 44, 34), "olive": (72, 72, 46), "beige": (165, 152, 125), "dark green": (34, 54, 40),
    "maroon": (78, 30, 36), "denim": (58, 76, 110),
}
COLORS: dict[str, RGB] = {**EASY_COLORS, **HARD_COLORS}
SKIN_TONES: dict[str, RGB] = {
    "light": (236, 200, 175), "fair": (222, 178, 145), "medium": (190, 140, 100),
    "olive": (165, 120, 85), "brown": (125, 85, 60), "dark": (85, 58, 42),
}
HAIR_COLORS: dict[str, RGB] = {
    "black": (20, 18, 18), "dark brown": (55, 35, 25), "brown": (100, 65, 40),
    "blond": (200, 165, 95), "grey": (150, 150, 150), "red": (140, 60, 30),
}


@dataclass(frozen=True)
class Look:
    """Everything needed to draw one person (the identity's appearance, as RGB and numbers).

    Built from an identity's attributes by :func:`reidbook.data.synthetic.identity_look`; ``None``
    colours mean "absent" (no backpack, no hat, ...). Lengths are fractions of the person's height.
    """
    build: float              # width multiplier of shoulders/hips (0.85 slim … 1.2 broad)
    height: float             # person height relative to the crop (0.9 … 1.05)
    head: float               # head size multiplier
    waist: float              # y of the waist (0.47 … 0.53): leg length
    skin: RGB
    hair: RGB
    hair_style: str           # "short", "long", "bald", "ponytail"
    top: RGB
    top_pattern: str          # "plain", "stripes", "checks", "chest_mark"
    pattern: RGB              # stripe / check / chest-mark colour
    mark_shape: str           # "circle", "square", "triangle", "bar"
    sleeves: str              # "long", "short"
    bottom: RGB
    bottom_type: str          # "trousers", "shorts", "skirt"
    shoes: RGB
    backpack: RGB | None
    bag: RGB | None           # shoulder bag
    bag_side: int             # -1 left hip, +1 right hip (image coordinates, front view)
    hat: RGB | None
    item: RGB | None          # hand-carried item
    item_side: int


def jitter_color(rgb: RGB, rng: np.random.Generator, amount: float) -> RGB:
    """``rgb`` with independent uniform noise of ±``amount`` per channel, clipped to 0..255."""
    c = np.asarray(rgb, float) + rng.uniform(-amount, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _shade(rgb: RGB | None, f: float) -> RGB | None:
    return None if rgb is None else tuple(int(min(255, max(0, v * f))) for v in rgb)


# ----------------------------------------------------------------------------------------------
# background
# ----------------------------------------------------------------------------------------------
SCENE_WIDTH = 6      # a camera's scene is this many crop widths wide ...
SCENE_HEIGHT = 1.4   # ... and this many crop heights tall: crops are windows at varying places and scales


def camera_scene(cam, height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A wide street scene for one camera: wall, ground, facades, shop signs, poles.

    Drawn once per camera and reused: in real data, crops from one camera share its background. It is
    :data:`SCENE_WIDTH` crop widths wide and :data:`SCENE_HEIGHT` crop heights tall, so that each crop
    (:func:`background`) sees another part of it, at another scale. Facades vary around the camera's
    wall colour, and some take a colour of their own (a shop, a poster): a camera's look is a
    palette, not one colour. ``cam`` is a :class:`~reidbook.data.synthetic.CameraSettings`; size is
    the supersampled crop size.
    """
    W, H = width * SCENE_WIDTH, int(round(height * SCENE_HEIGHT))
    img = Image.new("RGB", (W, H), cam.wall)
    d = ImageDraw.Draw(img)
    hy = int((cam.horizon + (SCENE_HEIGHT - 1) / 2) * height)  # a centred window sees the camera's horizon
    d.rectangle([0, hy, W, H], fill=cam.ground)
    # ground: patches of other paving, then kerb and paving lines
    for _ in range(int(4 + 6 * cam.clutter)):
        x, w = rng.uniform(0, W), rng.uniform(0.5, 2.0) * width
        y, h = rng.uniform(hy, H), rng.uniform(0.05, 0.3) * height
        d.rectangle([x, y, x + w, y + h], fill=jitter_color(cam.ground, rng, 25))
    # facades: blocks around the wall colour (some in a colour of their own), with windows
    x = 0
    while x < W:
        bw = int(rng.uniform(0.3, 1.2) * width)
        own = rng.random() < 0.5
        col = jitter_color(COLORS[_choice(rng, COLORS)] if own else cam.wall, rng, 30)
        if own:  # a shop front: the colour muted toward the wall
            col = tuple(int(0.55 * a + 0.45 * b) for a, b in zip(col, cam.wall))
        top = int(rng.uniform(0.0, 0.5) * height)
        d.rectangle([x, top, x + bw, hy], fill=col)
        if rng.random() < 0.6:  # windows / shop fronts
            win = jitter_color(cam.accent, rng, 25)
            ww, wh = max(2, int(0.12 * width)), max(2, int(0.08 * height))
            for wy in range(top + wh, hy - wh, int(wh * 2.2)):
                for wx in range(x + ww // 2, x + bw - ww, int(ww * 1.8)):
                    d.rectangle([wx, wy, wx + ww, wy + wh], fill=win)
        x += bw
    d.rectangle([0, hy, W, hy + max(1, height // 60)], fill=_shade(cam.ground, 0.7))
    for _ in range(int(8 * cam.clutter) + 2):
        y = int(rng.uniform(hy, H))
        d.line([0, y, W, y + int(rng.uniform(-0.1, 0.1) * height)], fill=_shade(cam.ground, rng.uniform(0.8, 1.2)),
               width=max(1, height // 100))
    # poles, signs, bins
    for _ in range(int(14 * cam.clutter) + 2):
        px = int(rng.uniform(0, W))
        pw = max(2, int(rng.uniform(0.02, 0.06) * width))
        col = jitter_color(cam.accent, rng, 60)
        d.rectangle([px, int(rng.uniform(0.05, 0.5) * height), px + pw, hy + int(0.05 * height)], fill=col)
        if rng.random() < 0.4:  # a sign on the pole
            sc = jitter_color(COLORS[_choice(rng, COLORS)], rng, 30)
            sy, sw = rng.uniform(0.1, 0.5) * height, rng.uniform(0.08, 0.2) * width
            d.rectangle([px - sw / 2, sy, px + sw / 2, sy + sw * rng.uniform(0.6, 1.4)], fill=sc)
    return img


def _choice(rng: np.random.Generator, names) -> str:
    names = list(names)
    return names[int(rng.integers(len(names)))]


def background(scene: Image.Image, cam, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """One crop's background: a window of the camera's scene, varied per image.

    Real detector crops from one camera differ in where in the frame the person walked, how far away
    (the scale of the background behind a person of fixed height), what passed by and the light on
    the background. So: a window at a random place and scale (0.8–1.25 crop sizes), per-image clutter
    (mostly in the camera's palette, one in five in any colour: bags, bikes, posters), a shadow on
    part of the ground, a per-image tone (per-channel gain and brightness) and a smooth texture on the
    background only. A camera stays recognisable (its palette, its light), but its background is no
    longer one fixed colour histogram.

    The background is drawn at half the requested (supersampled) size and enlarged: it is detail
    behind the person that the camera's filters blur anyway, and it is the costliest step per image.
    """
    W, H = width, height
    width, height = max(1, W // 2), max(1, H // 2)
    z = rng.uniform(0.8, 1.25)
    ww, wh = min(scene.width, W * z), min(scene.height, H * z)
    x0, y0 = rng.uniform(0, scene.width - ww), rng.uniform(0, scene.height - wh)
    # nearest-neighbour: 5x cheaper than bilinear, and the camera's box filter smooths it
    img = scene.resize((width, height), Image.NEAREST, box=(x0, y0, x0 + ww, y0 + wh))
    d = ImageDraw.Draw(img)
    for _ in range(rng.poisson(3 + 6 * cam.clutter)):
        cx, cy = rng.uniform(0, width), rng.uniform(0.15, 1.0) * height
        w, h = rng.uniform(0.05, 0.35) * width, rng.uniform(0.03, 0.2) * height
        if rng.random() < 0.8:
            col = jitter_color(cam.accent if rng.random() < 0.5 else cam.ground, rng, 70)
        else:
            col = jitter_color(COLORS[_choice(rng, COLORS)], rng, 40)
        shape = d.ellipse if rng.random() < 0.4 else d.rectangle
        shape([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=col)
    # one multiplier per pixel and channel: tone × texture (a smooth pattern: weathered walls, paving,
    # foliage; a window of a fixed bank) × shadow
    tone = (rng.uniform(0.9, 1.1, 3) * rng.uniform(0.8, 1.2)).astype(np.float32)
    a = np.asarray(img, np.float32)
    a *= _texture_window(height, width, rng)
    a *= tone
    if rng.random() < 0.5:  # a shadow (a building's, a tree's) over a band of the lower part
        xa, xb = sorted(rng.uniform(-0.3, 1.3, 2) * width)
        ya = int(rng.uniform(0.3, 0.8) * height)
        a[ya:, max(0, int(xa)):max(0, int(xb))] *= np.float32(rng.uniform(0.55, 0.85))
    a += 0.5
    np.clip(a, 0, 255, out=a)
    return Image.fromarray(a.astype(np.uint8)).resize((W, H), Image.NEAREST)


_TEXTURE: dict[tuple[int, int, float], np.ndarray] = {}


def _texture_window(H: int, W: int, rng: np.random.Generator, amount: float = 0.15) -> np.ndarray:
    """A ``[H, W, 1]`` multiplier in ``1 ± amount``: a random window of a fixed bank of smooth noise
    (Gaussian noise on a grid of 1/16 the size, upsampled bilinearly). Like :func:`_noise_window`, the
    bank is fixed and the window comes from ``rng``."""
    bank = _TEXTURE.get((H, W, amount))
    if bank is None:
        g = np.random.default_rng(54321).uniform(-1, 1, (3 * H // 16 + 2, 3 * W // 16 + 2)).astype(np.float32)
        big = Image.fromarray(g, "F").resize((3 * W, 3 * H), Image.BILINEAR)
        bank = _TEXTURE[(H, W, amount)] = 1 + amount * np.asarray(big, np.float32)[..., None]
    y, x = int(rng.integers(0, 2 * H)), int(rng.integers(0, 2 * W))
    return bank[y:y + H, x:x + W]


# ----------------------------------------------------------------------------------------------
# person
# ----------------------------------------------------------------------------------------------
class _Pen:
    """Draws in person coordinates: x, y in units of the person's height from its top centre.

    With ``labels`` (an ``ImageDraw`` on an ``"L"`` image of the same size) every shape is drawn a
    second time, there, filled with the label of the body part being drawn (``pen.part``), or with 0
    when ``labelled=False`` (a passer-by in front of the person hides it: background for the mask).
    Both images get the same shapes in the same order, so later shapes cover earlier ones in both.
    """

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, top: float, hp: float,
                 labels: ImageDraw.ImageDraw | None = None, labelled: bool = True, aspect: float = 1.0):
        self.d, self.cx, self.top, self.hp, self.hx = draw, cx, top, hp, hp * aspect
        self.ld, self.labelled, self.part = labels, labelled, 0

    def _lab(self) -> int:
        return self.part if self.labelled else 0

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.cx + x * self.hx, self.top + y * self.hp)

    def poly(self, pts, fill) -> None:
        xy = [self.p(x, y) for x, y in pts]
        self.d.polygon(xy, fill=fill)
        if self.ld is not None:
            self.ld.polygon(xy, fill=self._lab())

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill) -> None:
        (x0, y0), (x1, y1) = self.p(x - rx, y - ry), self.p(x + rx, y + ry)
        self.d.ellipse([x0, y0, x1, y1], fill=fill)
        if self.ld is not None:
            self.ld.ellipse([x0, y0, x1, y1], fill=self._lab())

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill) -> None:
        (a, b), (c, e) = self.p(x0, y0), self.p(x1, y1)
        box = [min(a, c), min(b, e), max(a, c), max(b, e)]
        self.d.rectangle(box, fill=fill)
        if self.ld is not None:
            self.ld.rectangle(box, fill=self._lab())

    def capsule(self, x0: float, y0: float, x1: float, y1: float, w: float, fill) -> None:
        """A limb: a thick segment with round ends, ``w`` = thickness."""
        a, b = self.p(x0, y0), self.p(x1, y1)
        wp = max(1, int(round(w * (self.hp + self.hx) / 2)))
        r = wp / 2
        for d, f in ((self.d, fill), (self.ld, self._lab())):
            if d is None:
                continue
            d.line([a, b], fill=f, width=wp)
            for (u, v) in (a, b):
                d.ellipse([u - r, v - r, u + r, v + r], fill=f)


def _mark(pen: _Pen, look: Look, x: float, y: float, s: float) -> None:
    """The chest mark (a logo / print), drawn only on front views."""
    c = look.pattern
    if look.mark_shape == "circle":
        pen.ellipse(x, y, s, s, c)
    elif look.mark_shape == "square":
        pen.rect(x - s, y - s, x + s, y + s, c)
    elif look.mark_shape == "triangle":
        pen.poly([(x - s * 1.2, y + s), (x + s * 1.2, y + s), (x, y - s * 1.2)], c)
    else:  # a horizontal bar across the chest
        pen.rect(x - 2.2 * s, y - 0.6 * s, x + 2.2 * s, y + 0.6 * s, c)


def _torso_pattern(img: Image.Image, pen: _Pen, look: Look, torso_pts, y0: float, y1: float) -> None:
    """Stripes or checks clipped to the torso polygon (drawn on a mask, pasted once)."""
    if look.top_pattern not in ("stripes", "checks"):
        return
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).polygon([pen.p(x, y) for x, y in torso_pts], fill=255)
    lines = Image.new("L", img.size, 0)
    ld = ImageDraw.Draw(lines)
    step = 0.05
    n = int((y1 - y0) / step) + 1
    for i in range(0, n, 2):
        (_, a), (_, b) = pen.p(0, y0 + i * step), pen.p(0, y0 + (i + 1) * step)
        ld.rectangle([0, a, img.width, b], fill=255)
    if look.top_pattern == "checks":  # xor with vertical bands
        cols = Image.new("L", img.size, 0)
        cd = ImageDraw.Draw(cols)
        for i in range(-8, 8, 2):
            (a, _), (b, _) = pen.p(i * step, 0), pen.p((i + 1) * step, 0)
            cd.rectangle([a, 0, b, img.height], fill=255)
        lines = Image.fromarray(np.asarray(lines) ^ np.asarray(cols))
    mask = Image.fromarray(np.minimum(np.asarray(mask), np.asarray(lines)))
    img.paste(Image.new("RGB", img.size, look.pattern), (0, 0), mask)


def draw_person(img: Image.Image, look: Look, view: str, cx: float, top: float, hp: float,
                rng: np.random.Generator, labels: Image.Image | None = None, labelled: bool = True,
                aspect: float = 1.0) -> None:
    """Draw ``look`` seen from ``view`` with its top-centre at (cx, top), ``hp`` pixels tall.

    Per-image pose: stride phase (legs), arm swing and a slight lean come from ``rng``.
    ``labels``: an ``"L"`` image of ``img``'s size that receives the body-part label map
    (:data:`PART_LABELS`) of what is drawn — or 0 with ``labelled=False`` (a passer-by in front).
    Colours and labels are drawn shape by shape, so the label map is exact at this resolution.
    ``aspect`` stretches the person horizontally (a detector box resized to the crop's aspect ratio).
    """
    d = ImageDraw.Draw(img)
    pen = _Pen(d, cx, top, hp, ImageDraw.Draw(labels) if labels is not None else None, labelled, aspect)
    side = view in ("left", "right")
    f = 1.0 if view == "right" else -1.0          # facing direction for side views
    stride = rng.uniform(-1, 1)                    # walking phase
    lean = rng.uniform(-0.015, 0.015) + (0.015 * f if side else 0.0)
    b = look.build
    sw = (0.085 if side else 0.15) * b             # half shoulder width
    hw = (0.08 if side else 0.125) * b             # half hip width
    sy, wy = 0.17, look.waist                      # shoulder and waist heights
    ky, ay = (wy + 0.95) / 2, 0.95                 # knee and ankle
    leg_w, arm_w = 0.085 * b, 0.065 * b

    # --- legs -------------------------------------------------------------------------------
    pen.part = PART_LABELS["legs"]
    if side:
        sp = 0.13 * stride
        feet = [(-sp, 1), (sp, 0)]                  # (x offset of the ankle, near-leg flag)
    else:
        sp = 0.02 * abs(stride)
        feet = [(-hw * 0.55 - sp, 0), (hw * 0.55 + sp, 1)]
    bottom_end = {"trousers": ay, "shorts": wy + 0.15, "skirt": wy + 0.2}[look.bottom_type]
    for fx, near in sorted(feet, key=lambda t: t[1]):
        hx = (fx * 0.25 if side else fx * 0.8) + lean * 0.3
        kx = (hx + fx) / 2 + (0.02 * f if side else 0)
        col_low = look.bottom if look.bottom_type == "trousers" else look.skin
        if side and not near:
            col_low, col_hi = _shade(col_low, 0.8), _shade(look.bottom, 0.8)
        else:
            col_hi = look.bottom
        pen.capsule(hx, wy, kx, ky, leg_w, col_hi if bottom_end >= ky else col_low)
        pen.capsule(kx, ky, fx, ay, leg_w * 0.85, col_low if bottom_end < ay else col_hi)
        if look.bottom_type == "shorts":
            pen.capsule(hx, wy, hx + (kx - hx) * 0.6, wy + 0.15, leg_w * 1.1, col_hi)
        # shoe
        pen.part = PART_LABELS["feet"]
        if side:
            pen.ellipse(fx + 0.03 * f, ay + 0.02, 0.055, 0.025, look.shoes)
        else:
            pen.ellipse(fx, ay + 0.02, 0.035, 0.03, look.shoes)
        pen.part = PART_LABELS["legs"]
    # hips / skirt
    if look.bottom_type == "skirt":
        pen.poly([(-hw + lean, wy - 0.01), (hw + lean, wy - 0.01), (hw * 1.5, wy + 0.2), (-hw * 1.5, wy + 0.2)],
                 look.bottom)
    else:
        pen.poly([(-hw + lean, wy - 0.01), (hw + lean, wy - 0.01), (hw * 0.9, wy + 0.07), (-hw * 0.9, wy + 0.07)],
                 look.bottom)

    # --- backpack seen from a side is behind the body: draw it first ------------------------
    if look.backpack is not None and side:
        pen.part = PART_LABELS["bag"]
        bx = -f * (sw + 0.02)
        pen.rect(bx, sy + 0.02, bx - f * 0.08, sy + 0.27, look.backpack)

    # --- far arm (side view) ----------------------------------------------------------------
    swing = 0.09 * stride
    sleeve_end = 0.6 if look.sleeves == "long" else 0.3

    def arm(x0, xh, far=False):
        pen.part = PART_LABELS["arms"]
        top_c = _shade(look.top, 0.8) if far else look.top
        skin_c = _shade(look.skin, 0.8) if far else look.skin
        ex, ey = x0 + (xh - x0) * sleeve_end, sy + (wy + 0.01 - sy) * sleeve_end
        pen.capsule(x0, sy + 0.02, ex, ey, arm_w, top_c)
        pen.capsule(ex, ey, xh, wy + 0.01, arm_w * 0.8, top_c if sleeve_end >= 0.99 else skin_c)
        pen.ellipse(xh, wy + 0.02, arm_w * 0.45, arm_w * 0.5, skin_c)

    if side:
        arm(lean, lean - swing, far=True)

    # --- torso ------------------------------------------------------------------------------
    torso = [(-sw + lean, sy), (sw + lean, sy), (hw + lean * 0.5, wy + 0.01), (-hw + lean * 0.5, wy + 0.01)]
    pen.part = PART_LABELS["torso"]
    pen.poly(torso, look.top)
    _torso_pattern(img, pen, look, torso, sy, wy)
    if look.top_pattern == "chest_mark" and view == "front":
        _mark(pen, look, lean, sy + 0.09, 0.028)
    # backpack from the back; its straps from the front
    pen.part = PART_LABELS["bag"]
    if look.backpack is not None:
        if view == "back":
            pen.rect(-sw * 0.75 + lean, sy + 0.02, sw * 0.75 + lean, sy + 0.28, look.backpack)
            pen.rect(-sw * 0.55 + lean, sy + 0.17, sw * 0.55 + lean, sy + 0.26, _shade(look.backpack, 0.75))
        elif view == "front":
            for s in (-1, 1):
                pen.capsule(s * sw * 0.6 + lean, sy, s * sw * 0.55 + lean, sy + 0.2, 0.022, look.backpack)
    # shoulder bag: diagonal strap + bag at the hip (mirrored when seen from the back)
    if look.bag is not None:
        s = look.bag_side * (-1 if view == "back" else 1)
        if side:
            pen.capsule(0.0, sy, f * 0.02, wy - 0.03, 0.02, look.bag)
            pen.rect(-0.05 + f * 0.03, wy - 0.05, 0.05 + f * 0.03, wy + 0.06, look.bag)
        else:
            pen.capsule(-s * sw * 0.7 + lean, sy, s * hw + lean, wy - 0.02, 0.02, look.bag)
            bx = s * (hw + 0.015) + lean
            pen.rect(bx - 0.045, wy - 0.05, bx + 0.045, wy + 0.07, look.bag)

    # --- arms -------------------------------------------------------------------------------
    if side:
        arm(lean, lean + swing)
    else:
        for s in (-1, 1):
            arm(s * (sw - arm_w * 0.3) + lean, s * (hw + arm_w * 0.9) + lean * 0.5)
    # hand-carried item
    pen.part = PART_LABELS["bag"]
    if look.item is not None:
        s = look.item_side * (-1 if view == "back" else 1)
        hx = (lean + swing) if side else s * (hw + arm_w * 0.9)
        pen.rect(hx - 0.045, wy + 0.03, hx + 0.045, wy + 0.13, look.item)

    # --- neck, head, hair, hat --------------------------------------------------------------
    pen.part = PART_LABELS["head"]
    hr = 0.055 * look.head
    hx, hyc = lean * 1.3 + (0.012 * f if side else 0), 0.085
    pen.rect(hx - 0.025, hyc + hr * 0.6, hx + 0.025, sy + 0.01, look.skin)
    long_hair = look.hair_style in ("long", "ponytail")
    if look.hair_style == "long":
        if view == "back":
            pen.rect(hx - hr * 1.0, hyc, hx + hr * 1.0, sy + 0.08, look.hair)
        elif side:
            pen.rect(hx - f * hr * 1.0, hyc, hx - f * hr * 0.1, sy + 0.06, look.hair)
    if look.hair_style == "ponytail" and view != "front":
        px = hx - f * hr * 1.1 if side else hx
        pen.capsule(px, hyc, px, sy + 0.05, 0.03, look.hair)
    if view == "back":
        pen.ellipse(hx, hyc, hr * 0.85, hr, look.hair if look.hair_style != "bald" else look.skin)
    else:
        pen.ellipse(hx, hyc, hr * (0.8 if side else 0.82), hr, look.skin)
        if look.hair_style != "bald":
            if side:  # hair covers the back of the head
                pen.poly([(hx - f * hr * 0.85, hyc - hr * 0.2), (hx - f * hr * 0.3, hyc - hr * 1.0),
                          (hx + f * hr * 0.5, hyc - hr * 0.95), (hx + f * hr * 0.7, hyc - hr * 0.55),
                          (hx - f * hr * 0.1, hyc - hr * 0.45), (hx - f * hr * 0.35, hyc + hr * 0.6),
                          (hx - f * hr * 0.8, hyc + hr * 0.4)], look.hair)
            else:
                pen.ellipse(hx, hyc - hr * 0.55, hr * 0.85, hr * 0.5, look.hair)
                if long_hair and look.hair_style == "long":
                    for s in (-1, 1):
                        pen.rect(hx + s * hr * 0.95, hyc - hr * 0.2, hx + s * hr * 0.6, sy + 0.05, look.hair)
    if look.hat is not None:
        pen.poly([(hx - hr * 0.9, hyc - hr * 0.35), (hx + hr * 0.9, hyc - hr * 0.35),
                  (hx + hr * 0.75, hyc - hr * 1.05), (hx - hr * 0.75, hyc - hr * 1.05)], look.hat)
        if side:  # the brim points the way the person faces
            pen.rect(hx + f * hr * 0.6, hyc - hr * 0.45, hx + f * hr * 1.35, hyc - hr * 0.3, look.hat)
        elif view == "front":
            pen.rect(hx - hr * 0.9, hyc - hr * 0.45, hx + hr * 0.9, hyc - hr * 0.28, _shade(look.hat, 0.7))


# ----------------------------------------------------------------------------------------------
# occluders and camera
# ----------------------------------------------------------------------------------------------
def draw_occluder(img: Image.Image, kind: str, cam, rng: np.random.Generator, other: Look | None = None,
                  labels: Image.Image | None = None) -> None:
    """Something in front of the person: ``"pole"``, ``"low"`` (bench/car/bush) or ``"person"``.

    ``labels``: the person's part-label map, set to 0 (background) wherever the occluder hides it.
    """
    W, H = img.size
    draws = [ImageDraw.Draw(img)] + ([ImageDraw.Draw(labels)] if labels is not None else [])
    if kind == "pole":
        x = rng.uniform(0.05, 0.95) * W
        w = rng.uniform(0.06, 0.16) * W
        col = jitter_color(cam.accent, rng, 50)
        for d, f in zip(draws, (col, 0)):
            d.rectangle([x - w / 2, 0, x + w / 2, H], fill=f)
    elif kind == "low":
        h = rng.uniform(0.12, 0.3) * H
        col = jitter_color(cam.accent if rng.random() < 0.5 else COLORS[rng.choice(list(COLORS))], rng, 30)
        x0 = rng.uniform(-0.6, 0.2) * W
        x1 = x0 + rng.uniform(0.8, 1.6) * W
        for d, f in zip(draws, (col, 0)):
            d.rounded_rectangle([x0, H - h, x1, H + 5], radius=max(1, int(0.1 * h)), fill=f)
    elif kind == "person" and other is not None:
        s = rng.choice([-1, 1])
        hp = H * rng.uniform(0.85, 1.0)
        draw_person(img, other, VIEWS[int(rng.integers(4))], W / 2 + s * rng.uniform(0.55, 0.75) * W,
                    rng.uniform(0.0, 0.08) * H, hp, rng, labels=labels, labelled=False)


def apply_camera(img: Image.Image, cam, out_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Downsample to ``out_size`` (H, W) and apply the camera: resolution, blur, light, cast, noise.

    Returns a uint8 array ``[H, W, 3]``. Per-image jitter of brightness and cast models changing
    daylight and auto-exposure; the camera's settings are the centre of that jitter.
    """
    H, W = out_size
    f = img.width // W
    img = img.reduce(f) if f * W == img.width and f * H == img.height else img.resize((W, H), Image.BOX)
    r = cam.res_factor * rng.uniform(0.9, 1.1)
    if r > 1.05:
        img = img.resize((max(8, int(W / r)), max(8, int(H / r))), Image.BILINEAR).resize((W, H), Image.BILINEAR)
    blur = cam.blur * rng.uniform(0.7, 1.3) * W / 64
    if blur > 0.25:
        img = img.filter(ImageFilter.BoxBlur(blur))
    # light: per-channel gain (colour cast × exposure) and a fall-off across the frame (sun from one
    # side, a street lamp above), folded into one multiplier per column and channel
    gain = np.asarray(cam.gain, np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    gain *= cam.brightness * rng.uniform(0.85, 1.15)
    ramp = 1 + np.linspace(-1, 1, W, dtype=np.float32) * rng.uniform(-0.15, 0.15)
    a = np.asarray(img, np.float32) * (ramp[:, None] * gain[None, :])[None]
    # contrast and gamma through a lookup table on the (clipped) linear value
    lut = np.clip((np.arange(1024, dtype=np.float32) / 255 - 0.5) * cam.contrast + 0.5, 0, 1) ** cam.gamma * 255
    a = lut[np.minimum(a, 1023).astype(np.int16)]
    a += _noise_window(H, W, rng) * cam.noise
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def downsample_labels(labels: Image.Image, out_size: tuple[int, int]) -> np.ndarray:
    """The part-label map at the output size ``(H, W)``, matching :func:`apply_camera`'s box reduction.

    An output pixel covers a ``f×f`` block of the supersampled map: it is the person when at least
    half of the block is (the image pixel is then at least half the person's colours), and takes the
    highest part label in the block (at a boundary between parts the later label wins: thin parts —
    straps, hands, shoes — survive the reduction). Returns ``uint8 [H, W]``.
    """
    H, W = out_size
    lab = np.asarray(labels, np.uint8)
    f = lab.shape[1] // W
    if f * W != lab.shape[1] or f * H != lab.shape[0]:
        return np.asarray(labels.resize((W, H), Image.NEAREST), np.uint8)
    if f == 1:
        return lab.copy()
    part = np.zeros((H, W), np.uint8)
    count = np.zeros((H, W), np.int32)
    for dy in range(f):  # f*f strided views: much faster than reducing small axes of a reshape
        for dx in range(f):
            sub = lab[dy::f, dx::f]
            np.maximum(part, sub, out=part)
            count += sub > 0
    part[2 * count < f * f] = 0
    return part


_NOISE: dict[tuple[int, int], np.ndarray] = {}


def _noise_window(H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian sensor noise ``[H, W, 3]``: a random window of a fixed bank (drawing fresh
    normals for every pixel of every image costs more than all the drawing). The bank is fixed, the
    window comes from ``rng``, so the result is still a pure function of the image's seed."""
    bank = _NOISE.get((H, W))
    if bank is None:
        bank = _NOISE[(H, W)] = np.random.default_rng(12345).standard_normal((3 * H, 3 * W, 3), dtype=np.float32)
    y, x = int(rng.integers(0, 2 * H)), int(rng.integers(0, 2 * W))
    return bank[y:y + H, x:x + W]
