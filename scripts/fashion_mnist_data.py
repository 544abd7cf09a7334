#!/usr/bin/python3
"""Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/,
idx files, gzipped) for lithe: the loader and normalization that
scripts/train_fashion_mnist.py trains with, and a writer of images as .npy samples for
`lithe eval` and `lithe build --calib`.

    fashion_mnist_data.py OUTDIR [--count N] [--split test|train] [--offset K]

writes OUTDIR/NNNNN.npy (float32 [1,1,28,28], normalized exactly as in training; NNNNN is
the image's index in the split, so a sample keeps its name whatever --offset is) and
OUTDIR/labels.txt ("NNNNN.npy LABEL" lines), so that

    lithe eval MODEL --data OUTDIR --labels OUTDIR/labels.txt

measures top-1. Needs only numpy (Debian's python3-numpy).
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
# The training set's pixel mean and standard deviation after /255; the model's input is
# (pixels / 255 - MEAN) / STD.
MEAN = 0.2860
STD = 0.3530
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def _read_idx(path, want_ndim):
    """One idx file: big-endian magic (0, 0, dtype 0x08 = ubyte, ndim), ndim uint32 dims,
    then the bytes."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        sys.exit(f"{path}: too short for an idx header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or ndim != want_ndim:
        sys.exit(f"{path}: not a ubyte idx file of {want_ndim} dims "
                 f"(magic {zero:#x}, type {dtype:#x}, ndim {ndim})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        sys.exit(f"{path}: {body.size} bytes of data, dims {dims} need {int(np.prod(dims))}")
    return body.reshape(dims)


def load_split(split):
    """(images uint8 [N,28,28], labels int64 [N]) of "train" (60,000) or "test" (10,000)."""
    if split not in _FILES:
        sys.exit(f"unknown split '{split}' (train or test)")
    img_file, lab_file = _FILES[split]
    images = _read_idx(os.path.join(DATA_DIR, img_file), 3)
    labels = _read_idx(os.path.join(DATA_DIR, lab_file), 1).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        sys.exit(f"{DATA_DIR}: {split} images {images.shape} and labels {labels.shape} disagree")
    return images, labels


def normalize(images):
    """uint8 [N,28,28] -> float32 [N,1,28,28], the model's input. Computed in float32 in
    this order (divide, subtract, divide) so that every user gets the same bits."""
    x = images.astype(np.float32)[:, None, :, :] / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


def write_samples(outdir, split="test", count=None, offset=0):
    """Writes images [offset, offset+count) of `split` as .npy files plus labels.txt;
    returns the number written."""
    images, labels = load_split(split)
    n = images.shape[0]
    if offset < 0 or offset >= n:
        sys.exit(f"--offset {offset} outside the {split} split's {n} images")
    end = n if count is None else min(n, offset + count)
    if count is not None and count < 1:
        sys.exit(f"--count {count}: need at least 1")
    os.makedirs(outdir, exist_ok=True)
    x = normalize(images[offset:end])
    lines = []
    for i in range(offset, end):
        name = f"{i:05d}.npy"
        np.save(os.path.join(outdir, name), x[i - offset:i - offset + 1])
        lines.append(f"{name} {int(labels[i])}\n")
    # labels.txt last, written whole then renamed: a folder holding it is complete.
    tmp = os.path.join(outdir, "labels.txt.tmp")
    with open(tmp, "w") as f:
        f.write("# Fashion-MNIST %s images %d..%d: FILE LABEL (%s)\n"
                % (split, offset, end - 1, ", ".join(f"{k}={c}" for k, c in enumerate(CLASSES))))
        f.writelines(lines)
    os.replace(tmp, os.path.join(outdir, "labels.txt"))
    return end - offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=None, help="images to write (default: all)")
    ap.add_argument("--split", choices=["test", "train"], default="test")
    ap.add_argument("--offset", type=int, default=0, help="first image index")
    a = ap.parse_args()
    n = write_samples(a.outdir, a.split, a.count, a.offset)
    print(f"wrote {n} {a.split} images and labels.txt to {a.outdir}")


if __name__ == "__main__":
    main()
