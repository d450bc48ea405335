#!/usr/bin/env bash
# The GPU run of issue 23: the masked (MDLM) and the uniform-state (UDLM) model trained side by
# side on one GPU for the same wall time, same shape, data, tokenizer, batch and learning rate.
# Run from the repository root on the GPU machine, with the token arrays prepared here first:
#   python3 train/data.py && mkdir -p .gpu && cp train/work/{val.npy,tokenizer.json} .gpu/ &&
#   xz -9 -c train/work/train.npy > .gpu/train.npy.xz   # (the tree that travels is capped at 64 MiB)
#   MINUTES=7.3 OUT=/some/dir train/gpu.sh
# Writes $OUT/{mdlm,udlm}.safetensors (F16, best validation), $OUT/{mdlm,udlm}.log.json and the
# two runs' stdout; train/export.py's config.json and tokenizer.json are made from the log after.
set -u
MINUTES=${MINUTES:-7.3}
# which objectives to train side by side: issue 23's pair by default, or OBJECTIVES="gaussian bits"
OBJECTIVES=${OBJECTIVES:-mdlm udlm}
DATA=${DATA:-.gpu}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-train/work/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, numpy, tokenizers, safetensors; print("torch", torch.__version__, "numpy", numpy.__version__, "tokenizers", tokenizers.__version__)'
python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('$DATA/train.npy.xz'), open('/tmp/train.npy', 'wb'))"
pids=()
for obj in $OBJECTIVES; do
  w=/tmp/work-$obj
  mkdir -p "$w"
  cp /tmp/train.npy "$DATA"/val.npy "$DATA"/tokenizer.json "$w"/
  # timeout: a run that overruns is stopped in time for its best export to be copied back
  PYTHONUNBUFFERED=1 timeout $(python3 -c "print(int($MINUTES*60+60))") \
    python3 train/train.py --objective $obj --device "$DEVICE" --minutes "$MINUTES" \
      --tokens-per-step 32768 --lr 2e-3 --warmup 300 --dropout 0.1 --eval-every 250 \
      --threads 4 --work "$w" --export "$w/export" > "$OUT/$obj.stdout" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; echo "run $p exited $?"; done
for obj in $OBJECTIVES; do
  cp /tmp/work-$obj/export/model.safetensors "$OUT/$obj.safetensors" 2>/dev/null || echo "$obj: no export"
  cp /tmp/work-$obj/export/training_log.json "$OUT/$obj.log.json" 2>/dev/null || cp /tmp/work-$obj/log.json "$OUT/$obj.log.json"
  tail -3 "$OUT/$obj.stdout"
done
ls -la "$OUT"
