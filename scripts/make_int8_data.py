#!/usr/bin/env python3
"""Renders the image sets of the INT8 accuracy benchmark (bench/int8_accuracy.sh): a
calibration set and a separate test set for three real models. Deterministic: every set
comes from its own seeded numpy generator, so the same arguments give the same files.

  make_int8_data.py cls  OUT N_TEST N_CALIB   PP-OCR orientation classifier (192x48 crops)
  make_int8_data.py det  OUT N_TEST N_CALIB   PP-OCRv4 text detector (640x640 pages)
  make_int8_data.py face OUT N_TEST N_CALIB   BlazeFace (128x128 scenes with drawn faces)

Writes OUT/test/... and OUT/calib/... as PNG (Pillow, Debian python3-pil). Fonts: the
DejaVu family (Debian fonts-dejavu-core and fonts-dejavu-extra: Sans, Serif, Mono,
Condensed, bold and oblique variants). Text: words of the licence texts in
/usr/share/common-licenses (Debian base-files).

cls: every crop is one distinct line of 2-6 words in a random DejaVu face, dark text on a
light, slightly shaded and noisy background (one in eight inverted: light on dark), fitted
into 192x48; every other line is rotated by 180 degrees. OUT/<set>/0/NNN.png holds the
upright lines, OUT/<set>/180/NNN.png the rotated ones, so the sorted folder names give
PP-OCR's labels (class 0 upright, class 1 rotated). Test lines come from GPL-3, LGPL-2.1,
Apache-2.0 and MPL-2.0, calibration lines from GFDL-1.3 and Artistic: no line is in both.

det: pages of paragraphs (several blocks per page, 12-40 px type, one colour per block)
on paper-like backgrounds with a few non-text shapes (rules, boxes, blobs).
OUT/<set>/NNN.png.

face: no face data set is at hand, so each image is a synthetic scene: a smooth gradient or
a blurred noise texture with a few random shapes, and 0-2 cartoon faces drawn with Pillow
(skin-toned head, hair, eyes with pupils, brows, nose, mouth), slightly blurred.
OUT/<set>/NNN.png.
"""
import os
import re
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
LICENSES = "/usr/share/common-licenses"
TEST_TEXTS = ["GPL-3", "LGPL-2.1", "Apache-2.0", "MPL-2.0"]
CALIB_TEXTS = ["GFDL-1.3", "Artistic"]
SEEDS = {"cls": 1001, "det": 2002, "face": 3003}


def fonts():
    names = sorted(f for f in os.listdir(FONT_DIR) if f.endswith(".ttf") and "Math" not in f)
    if not names:
        raise SystemExit(f"no DejaVu fonts in {FONT_DIR}")
    return [os.path.join(FONT_DIR, f) for f in names]


def words_of(names):
    words = []
    for n in names:
        with open(os.path.join(LICENSES, n), encoding="utf-8", errors="replace") as f:
            words += re.findall(r"[A-Za-z0-9][A-Za-z0-9,.;:()'/-]*", f.read())
    return words


class Lines:
    """Consecutive runs of words, in order, so every line is different."""

    def __init__(self, words, rng):
        self.words, self.rng, self.at = words, rng, 0

    def next(self, lo, hi):
        k = int(self.rng.integers(lo, hi + 1))
        if self.at + k > len(self.words):
            self.at = 0
        text = " ".join(self.words[self.at:self.at + k])
        self.at += k
        return text


def light_background(rng, w, h):
    """Light paper: a random light colour, a linear shade across the image, grain."""
    base = rng.uniform(190, 255, 3)
    shade = rng.uniform(-30, 10)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)[..., None] * shade
    img = base[None, None, :] + ramp + rng.normal(0, rng.uniform(0, 6), (h, w, 1))
    return np.clip(img, 0, 255)


def dark_colour(rng):
    return tuple(int(v) for v in rng.uniform(0, 90, 3))


def text_image(text, font, colour, bg):
    """Text drawn tightly on a plain canvas of colour bg (RGB)."""
    l, t, r, b = font.getbbox(text)
    img = Image.new("RGB", (r - l + 4, b - t + 4), bg)
    ImageDraw.Draw(img).text((2 - l, 2 - t), text, font=font, fill=colour)
    return img


def make_cls(out, n, texts, rng):
    W, H = 192, 48
    faces = fonts()
    lines = Lines(words_of(texts), rng)
    os.makedirs(f"{out}/0", exist_ok=True)
    os.makedirs(f"{out}/180", exist_ok=True)
    for i in range(n):
        text = lines.next(2, 6)
        font = ImageFont.truetype(faces[int(rng.integers(len(faces)))], 40)
        bg = light_background(rng, W, H)
        fg = np.array(dark_colour(rng), np.float32)
        if rng.random() < 0.125:  # light text on a dark background
            bg, fg = 255 - bg, 255 - fg
        # Coverage mask of the text, then fitted: glyphs 60-90% of the height, left aligned
        # with a small margin, shrunk further when the line is too long.
        ink = text_image(text, font, 255, 0).convert("L")
        fill = rng.uniform(0.6, 0.9)
        s = min(H * fill / ink.height, (W - 6) / ink.width)
        ink = ink.resize((max(1, int(ink.width * s)), max(1, int(ink.height * s))),
                         Image.BILINEAR)
        mask = np.zeros((H, W), np.float32)
        x0 = int(rng.integers(1, max(2, min(12, W - ink.width))))
        y0 = (H - ink.height) // 2 + int(rng.integers(-2, 3))
        y0 = min(max(y0, 0), H - ink.height)
        a = np.asarray(ink, np.float32)[:, :W - x0] / 255
        mask[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = a
        img = bg * (1 - mask[..., None]) + fg[None, None, :] * mask[..., None]
        img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
        if i % 2:
            Image.fromarray(img[::-1, ::-1].copy()).save(f"{out}/180/{i:03d}.png")
        else:
            Image.fromarray(img).save(f"{out}/0/{i:03d}.png")


def make_det(out, n, texts, rng):
    S = 640
    faces = fonts()
    lines = Lines(words_of(texts), rng)
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        page = Image.fromarray(light_background(rng, S, S).astype(np.uint8))
        d = ImageDraw.Draw(page)
        for _ in range(int(rng.integers(2, 6))):  # non-text clutter
            x, y = rng.integers(0, S, 2)
            w, h = rng.integers(20, 200, 2)
            c = tuple(int(v) for v in rng.uniform(120, 240, 3))
            kind = rng.integers(3)
            if kind == 0:
                d.line([(x, y), (x + w, y)], fill=c, width=int(rng.integers(1, 4)))
            elif kind == 1:
                d.rectangle([x, y, x + w, y + h], outline=c, width=2)
            else:
                d.ellipse([x, y, x + w, y + h], fill=c)
        y = int(rng.integers(5, 40))
        while y < S - 20:
            size = int(rng.integers(12, 41))
            font = ImageFont.truetype(faces[int(rng.integers(len(faces)))], size)
            colour = dark_colour(rng)
            left = int(rng.integers(5, S // 3))
            for _ in range(int(rng.integers(1, 6))):
                if y > S - size:
                    break
                text = lines.next(2, 9)
                d.text((left, y), text, font=font, fill=colour)
                y += int(size * rng.uniform(1.3, 1.8))
            y += int(rng.integers(10, 60))
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
        page.save(f"{out}/{i:03d}.png")


def random_colour(rng, lo=0, hi=255):
    return tuple(int(v) for v in rng.uniform(lo, hi, 3))


def background(rng, S):
    if rng.random() < 0.5:  # two-colour gradient
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
        t = np.clip(0.5 + (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)), 0, 1)[..., None]
        img = a * (1 - t) + b * t
    else:  # smooth texture: coarse noise upsampled
        k = int(rng.integers(4, 17))
        coarse = rng.uniform(0, 255, (k, k, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(coarse).resize((S, S), Image.BICUBIC), np.float32)
    img = img + rng.normal(0, rng.uniform(1, 8), (S, S, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def draw_face(d, rng, cx, cy, r):
    skin = (int(rng.uniform(120, 250)), int(rng.uniform(80, 200)), int(rng.uniform(60, 170)))
    hair = random_colour(rng, 0, 90)
    ry = r * rng.uniform(1.15, 1.35)
    d.ellipse([cx - r * 1.08, cy - ry * 1.1, cx + r * 1.08, cy + ry * 0.2], fill=hair)
    d.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=skin)
    d.ellipse([cx - r * 1.0, cy - ry * 1.05, cx + r * 1.0, cy - ry * 0.45], fill=hair)
    ey = cy - ry * 0.15
    for sx in (-1, 1):
        ex = cx + sx * r * 0.4
        ew, eh = r * 0.22, r * 0.12
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(245, 245, 240))
        p = r * 0.09
        d.ellipse([ex - p, ey - p, ex + p, ey + p], fill=random_colour(rng, 0, 80))
        d.line([(ex - ew, ey - eh * 2.2), (ex + ew, ey - eh * 2.6)], fill=hair,
               width=max(1, int(r * 0.08)))
    d.line([(cx, ey + r * 0.1), (cx - r * 0.08, cy + ry * 0.3), (cx + r * 0.05, cy + ry * 0.32)],
           fill=tuple(int(v * 0.7) for v in skin), width=max(1, int(r * 0.05)))
    mw = r * rng.uniform(0.3, 0.45)
    my = cy + ry * 0.55
    d.arc([cx - mw, my - r * 0.2, cx + mw, my + r * 0.1], 20, 160, fill=(150, 40, 50),
          width=max(1, int(r * 0.08)))


def make_face(out, n, rng):
    S = 128
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        img = background(rng, S)
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x, y = rng.integers(-20, S, 2)
            w, h = rng.integers(10, 60, 2)
            box = [int(x), int(y), int(x + w), int(y + h)]
            if rng.random() < 0.5:
                d.rectangle(box, fill=random_colour(rng))
            else:
                d.ellipse(box, fill=random_colour(rng))
        for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
            r = rng.uniform(12, 36)
            cx, cy = rng.uniform(r, S - r), rng.uniform(r * 1.2, S - r * 1.2)
            draw_face(d, rng, cx, cy, r)
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        img.save(f"{out}/{i:03d}.png")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in SEEDS:
        raise SystemExit(__doc__)
    kind, out = sys.argv[1], sys.argv[2]
    n_test, n_calib = int(sys.argv[3]), int(sys.argv[4])
    for part, n in (("test", n_test), ("calib", n_calib)):
        # One generator per set: the calibration set does not depend on N_TEST.
        rng = np.random.default_rng([SEEDS[kind], part == "calib"])
        dst = f"{out}/{part}"
        if kind == "cls":
            make_cls(dst, n, TEST_TEXTS if part == "test" else CALIB_TEXTS, rng)
        elif kind == "det":
            make_det(dst, n, TEST_TEXTS if part == "test" else CALIB_TEXTS, rng)
        else:
            make_face(dst, n, rng)
    print(f"{out}: {kind}, {n_test} test and {n_calib} calibration images")


if __name__ == "__main__":
    main()
