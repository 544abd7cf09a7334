#!/usr/bin/env python3
"""Renders a small labelled set of text-line crops for `lithe eval` with a text-orientation
classifier (PP-OCR cls: class 0 = upright, 1 = rotated 180 degrees).

Text: N lines of 2-4 words taken in order from /usr/share/common-licenses/GPL-3 (Debian
base-files); font: DejaVu Sans (Debian fonts-dejavu-core), rasterized with stb_truetype from
Debian's libstb (libstb.so.0, through ctypes); black text on white, 48 px high, padded to
192x48 (the classifier's input). Each line is written twice: OUT/0/NNN.png as rendered and
OUT/180/NNN.png rotated by 180 degrees, so the folder names are the labels.

Usage: make_text_crops.py OUT_DIR [N=50]
"""
import ctypes
import os
import re
import struct
import sys
import zlib

import numpy as np

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
TEXT = "/usr/share/common-licenses/GPL-3"
W, H = 192, 48


def write_png(path, gray):
    h, w = gray.shape
    raw = b"".join(b"\0" + gray[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


class Font:
    def __init__(self, path):
        self.lib = ctypes.CDLL("libstb.so.0")
        self.data = open(path, "rb").read()
        self.buf = ctypes.create_string_buffer(self.data, len(self.data))
        self.info = ctypes.create_string_buffer(4096)  # stbtt_fontinfo (about 160 bytes)
        if not self.lib.stbtt_InitFont(self.info, self.buf, 0):
            raise SystemExit(f"{path}: stbtt_InitFont failed")
        self.lib.stbtt_ScaleForPixelHeight.restype = ctypes.c_float
        self.lib.stbtt_GetCodepointBitmap.restype = ctypes.POINTER(ctypes.c_ubyte)

    def render(self, text, px):
        lib, info = self.lib, self.info
        scale = lib.stbtt_ScaleForPixelHeight(info, ctypes.c_float(px))
        asc, desc, gap = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        lib.stbtt_GetFontVMetrics(info, ctypes.byref(asc), ctypes.byref(desc), ctypes.byref(gap))
        base = int(round(asc.value * scale))
        height = int(round((asc.value - desc.value) * scale)) + 1
        glyphs, x = [], 0.0
        for ch in text:
            adv, lsb = ctypes.c_int(), ctypes.c_int()
            lib.stbtt_GetCodepointHMetrics(info, ord(ch), ctypes.byref(adv), ctypes.byref(lsb))
            w, h, xo, yo = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            bmp = lib.stbtt_GetCodepointBitmap(info, ctypes.c_float(0), ctypes.c_float(scale), ord(ch),
                                               ctypes.byref(w), ctypes.byref(h), ctypes.byref(xo),
                                               ctypes.byref(yo))
            if bmp and w.value > 0 and h.value > 0:
                g = np.ctypeslib.as_array(bmp, shape=(h.value, w.value)).copy()
                glyphs.append((int(x) + xo.value, base + yo.value, g))
                lib.stbtt_FreeBitmap(bmp, None)
            x += adv.value * scale
        img = np.zeros((height, int(x) + 2), np.uint8)
        for gx, gy, g in glyphs:
            y0, x0 = max(gy, 0), max(gx, 0)
            y1, x1 = min(gy + g.shape[0], img.shape[0]), min(gx + g.shape[1], img.shape[1])
            if y1 > y0 and x1 > x0:
                img[y0:y1, x0:x1] = np.maximum(img[y0:y1, x0:x1], g[y0 - gy:y1 - gy, x0 - gx:x1 - gx])
        return img


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    words = re.findall(r"[A-Za-z]+", open(TEXT).read())
    font = Font(FONT)
    os.makedirs(f"{out}/0", exist_ok=True)
    os.makedirs(f"{out}/180", exist_ok=True)
    at = 0
    for i in range(n):
        k = 2 + i % 3
        text = " ".join(words[at:at + k])
        at += k
        ink = font.render(text, 36)
        # Fit into 192x48 keeping the aspect ratio (nearest-neighbour shrink when too wide).
        h, w = ink.shape
        s = min((W - 8) / w, (H - 4) / h, 1.0)
        ys = (np.arange(int(h * s)) / s).astype(int)
        xs = (np.arange(int(w * s)) / s).astype(int)
        ink = ink[ys][:, xs]
        canvas = np.zeros((H, W), np.uint8)
        oy = (H - ink.shape[0]) // 2
        canvas[oy:oy + ink.shape[0], 4:4 + ink.shape[1]] = ink[:, :W - 4]
        img = 255 - canvas  # black text on white
        write_png(f"{out}/0/{i:03d}.png", img)
        write_png(f"{out}/180/{i:03d}.png", img[::-1, ::-1].copy())
    print(f"{out}: {n} upright and {n} rotated text crops of {W}x{H}")


if __name__ == "__main__":
    main()
