#!/usr/bin/env bash
# Packing benchmarks (issue: foundation + shardgan-pack). Not run by CI.
#   bench/pack_bench.sh [BUILD_DIR] [WORK_DIR]
# 1. HAM10000-shaped set (2000 JPEGs, 600x450, dermoscopy-like, real column layout): shardgan-pack --threads 2
#    against the seed's Python pipeline (../shared/peers/ham_seed_pipeline.py) on the same files, in one run.
# 2. Peak RSS of shardgan-pack for 2000 vs 8000 images (packing must stream).
# 3. CIFAR-10 packing throughput on a full-size archive (5 x 10,000 + 10,000 records, 177 MiB .tar.gz).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$(mktemp -d /tmp/shardgan-bench-XXXXXX)}
pack=$build/src/shardgan-pack
fixtures=$build/tests/shardgan-fixtures
peer=$here/../shared/peers/ham_seed_pipeline.py
"$here/launch/bootstrap.sh" --bench
mkdir -p "$work"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "work dir: $work"

gen_ham() {  # N QUALITY → $work/ham<N>q<QUALITY>
  [[ -d $work/ham$1q$2 ]] || "$fixtures" ham10000 --out "$work/ham$1q$2" --count "$1" --quality "$2" >/dev/null
}
peak_rss() {  # command...  → prints "seconds peak_rss_kib"
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/last.out" 2>"$work/last.err"
  cat "$work/time.txt"
}

# JPEG entropy decoding costs both tools the same per compressed byte, so the ratio depends on file size: run at two
# JPEG qualities (about 63 KiB and 143 KiB per 600x450 file).
for quality in 90 97; do
  gen_ham 2000 "$quality"
  set_dir=$work/ham2000q$quality
  echo "== HAM10000-shaped, 2000 images -> 32x32, JPEG quality $quality," \
       "mean $(( $(du -sb "$set_dir/HAM10000_images_part_1" | cut -f1) / 2000 / 1024 )) KiB per file =="
  cat "$set_dir"/HAM10000_images_part_1/*.jpg >/dev/null  # warm the page cache for both tools
  for threads in 1 2; do
    read -r secs rss < <(peak_rss "$pack" ham10000 --metadata "$set_dir/HAM10000_metadata.csv" \
        --images "$set_dir/HAM10000_images_part_1" --out "$work/out-ham" --force --threads "$threads")
    echo "shardgan-pack --threads $threads: $secs s wall, $(awk -v s="$secs" 'BEGIN{printf "%.0f", 2000/s}') img/s" \
         "(whole process), peak RSS $((rss / 1024)) MiB   [$(cat "$work/last.out")]"
  done
  if [[ -f $peer ]]; then
    read -r secs rss < <(peak_rss /usr/bin/python3 "$peer" "$set_dir" "$work/seed.h5")
    echo "seed pipeline (Python): $secs s wall, $(awk -v s="$secs" 'BEGIN{printf "%.0f", 2000/s}') img/s" \
         "(whole process), peak RSS $((rss / 1024)) MiB   [$(cat "$work/last.out")]"
  else
    echo "seed pipeline: $peer not found (it lives in the project's shared/ folder)"
  fi
done

echo "== streaming: peak RSS 2000 vs 8000 images =="
gen_ham 8000 90
for n in 2000 8000; do
  read -r secs rss < <(peak_rss "$pack" ham10000 --metadata "$work/ham${n}q90/HAM10000_metadata.csv" \
      --images "$work/ham${n}q90/HAM10000_images_part_1" --out "$work/out-ham$n" --force --threads 2)
  echo "$n images: $secs s, peak RSS $((rss / 1024)) MiB"
done

echo "== CIFAR-10 full-size archive (60,000 records) =="
[[ -f $work/cifar/cifar-10-binary.tar.gz ]] || "$fixtures" cifar10 --out "$work/cifar" --records 10000 --tar
echo "archive: $(du -h "$work/cifar/cifar-10-binary.tar.gz" | cut -f1)"
for classes in cat,dog 0,1,2,3,4,5,6,7,8,9; do
  read -r secs rss < <(peak_rss "$pack" cifar10 --input "$work/cifar/cifar-10-binary.tar.gz" --classes "$classes" \
      --out "$work/out-cifar" --force)
  echo "tar.gz --classes $classes (train split, 50,000 records read): $secs s," \
       "$(awk -v s="$secs" 'BEGIN{printf "%.0f", 50000/s}') records/s, peak RSS $((rss / 1024)) MiB   [$(cat "$work/last.out")]"
done
read -r secs rss < <(peak_rss "$pack" cifar10 --input "$work/cifar/cifar-10-batches-bin" --classes 0,1,2,3,4,5,6,7,8,9 \
    --out "$work/out-cifar" --force)
echo "folder, all classes: $secs s, $(awk -v s="$secs" 'BEGIN{printf "%.0f", 50000/s}') records/s, peak RSS $((rss / 1024)) MiB"
