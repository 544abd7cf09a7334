#!/usr/bin/python3
"""Compares every .npy output in REF_DIR with the file of the same name in TEST_DIR.

    compare_npy.py REF_DIR TEST_DIR [--min-cosine 0.9999] [--max-rel-abs 1e-3]

For each REF_DIR/*.npy prints name, shape, max abs error, cosine similarity, the range
of the reference and PASS/FAIL. An output passes when the shapes match and
  cosine(ref, test) >= --min-cosine, and
  max|ref - test| <= --max-rel-abs * scale,
where scale is ref.max() - ref.min(), or, for a constant reference, max|ref| (1 when
that is 0 too). Integer and bool outputs must match exactly. For an all-zero reference
the cosine is not checked (shown as 1 if the test is all zero too, else nan), and the
absolute error decides; a non-zero reference against an all-zero test has cosine 0. NaN/Inf must sit at the same
places with the same values in both; the metrics are then taken over the finite rest.

Exit status: 0 all passed; 1 some output failed or is missing in TEST_DIR (or REF_DIR
has no .npy); 2 usage error. The last line is a summary:
  summary: N outputs, F failed, min_cosine C, worst_rel_err R
"""
import argparse
import glob
import math
import os
import sys

import numpy as np


def compare(ref, test, min_cos, max_rel):
    """Returns (ok, info dict)."""
    info = {"shape": "x".join(map(str, ref.shape)) or "scalar", "max_abs": math.nan,
            "cosine": math.nan, "rmin": math.nan, "rmax": math.nan, "rel": math.nan, "why": ""}
    if ref.shape != test.shape:
        info["why"] = f"shape {'x'.join(map(str, test.shape)) or 'scalar'} != ref"
        return False, info
    if ref.size == 0:
        info.update(max_abs=0.0, cosine=1.0, rel=0.0)
        return True, info
    exact = ref.dtype.kind in "biu" and test.dtype.kind in "biu"
    r = ref.astype(np.float64).ravel()
    t = test.astype(np.float64).ravel()
    # Non-finite values must agree exactly (same place, same value).
    rnf, tnf = ~np.isfinite(r), ~np.isfinite(t)
    why = []
    if rnf.any() or tnf.any():
        same = (rnf == tnf).all() and np.array_equal(
            np.where(rnf, np.nan_to_num(r, nan=0.5), 0), np.where(tnf, np.nan_to_num(t, nan=0.5), 0))
        if not same:
            why.append(f"non-finite mismatch (ref {int(rnf.sum())}, test {int(tnf.sum())})")
        keep = ~(rnf | tnf)
        r, t = r[keep], t[keep]
    if r.size == 0:
        info.update(max_abs=0.0, cosine=1.0, rel=0.0)
        return not why, dict(info, why="; ".join(why))
    info["rmin"], info["rmax"] = float(r.min()), float(r.max())
    err = np.abs(r - t)
    max_abs = float(err.max())
    nr, nt = float(np.linalg.norm(r)), float(np.linalg.norm(t))
    if nr == 0.0:
        # All-zero reference: cosine is undefined; the absolute-error check (scale 1) decides.
        cos = 1.0 if nt == 0.0 else math.nan
    elif nt == 0.0:
        cos = 0.0
    else:
        cos = float(np.dot(r, t) / (nr * nt))
    scale = info["rmax"] - info["rmin"]
    if scale == 0.0:
        scale = float(np.abs(r).max()) or 1.0
    rel = max_abs / scale
    info.update(max_abs=max_abs, cosine=cos, rel=rel)
    if exact:
        if max_abs != 0.0:
            why.append(f"{int((err != 0).sum())} of {err.size} integer values differ")
    else:
        if nr != 0.0 and not cos >= min_cos:
            why.append(f"cosine {cos:.6f} < {min_cos}")
        if not rel <= max_rel:
            why.append(f"max abs err {max_abs:.3g} > {max_rel:g} * {scale:.4g}")
    info["why"] = "; ".join(why)
    return not why, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref_dir")
    ap.add_argument("test_dir")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    ap.add_argument("--max-rel-abs", type=float, default=1e-3)
    a = ap.parse_args()

    refs = sorted(glob.glob(os.path.join(a.ref_dir, "*.npy")))
    if not refs:
        print(f"compare_npy.py: no .npy files in {a.ref_dir}")
        print("summary: 0 outputs, 0 failed, min_cosine nan, worst_rel_err nan")
        return 1
    failed = 0
    min_cos, worst_rel = math.inf, 0.0
    print(f"{'output':<28} {'shape':<16} {'max_abs_err':>11} {'cosine':>10} {'ref_range':>25}  result")
    for path in refs:
        name = os.path.basename(path)[:-4]
        tpath = os.path.join(a.test_dir, os.path.basename(path))
        ref = np.load(path)
        if not os.path.exists(tpath):
            failed += 1
            min_cos, worst_rel = -math.inf, math.inf
            print(f"{name:<28} {'x'.join(map(str, ref.shape)):<16} {'':>11} {'':>10} {'':>25}  FAIL (missing in {a.test_dir})")
            continue
        try:
            test = np.load(tpath)
            ok, info = compare(ref, test, a.min_cosine, a.max_rel_abs)
        except Exception as e:  # unreadable file, odd dtype
            ok, info = False, {"shape": "?", "max_abs": math.nan, "cosine": math.nan,
                               "rmin": math.nan, "rmax": math.nan, "rel": math.nan, "why": str(e)}
        if not ok:
            failed += 1
        if not math.isnan(info["cosine"]):
            min_cos = min(min_cos, info["cosine"])
        elif not ok:
            min_cos = -math.inf
        worst_rel = math.inf if math.isnan(info["rel"]) else max(worst_rel, info["rel"])
        rng = f"[{info['rmin']:.4g}, {info['rmax']:.4g}]"
        res = "PASS" if ok else f"FAIL ({info['why']})"
        print(f"{name:<28} {info['shape']:<16} {info['max_abs']:>11.3g} {info['cosine']:>10.6f} {rng:>25}  {res}")
    extra = sorted(set(os.path.basename(p) for p in glob.glob(os.path.join(a.test_dir, "*.npy")))
                   - set(os.path.basename(p) for p in refs))
    for e in extra:
        print(f"note: {e} in {a.test_dir} has no reference (ignored)")
    print(f"summary: {len(refs)} outputs, {failed} failed, min_cosine {min_cos if min_cos != math.inf else 1.0:.6f}, worst_rel_err {worst_rel:.3g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
