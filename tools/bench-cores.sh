#!/usr/bin/env bash
# Benchmarks that need more cores than a developer VM: shard scaling (1/2/4/8 shards on 8
# groups), one subscriber with every stage on its own core, quiet-feed latency with spinning
# shards, and the TCP fan-out to 100 clients. Every figure comes from `tickcast bench` runs
# on the same host; results go to $OUT (or ./bench-cores) as JSON lines, one per run.
#   tools/bench-cores.sh [path/to/tickcast] [seconds per phase]
set -u
B=${1:-target/release/tickcast}
S=${2:-3}
OUT=${OUT:-bench-cores}
mkdir -p "$OUT"
R="$OUT/results.jsonl"
: >"$R"
{ nproc; uname -r; grep -m1 'model name' /proc/cpuinfo; } >"$OUT/host.txt" 2>&1
run() {
  local label=$1
  shift
  local t0=$SECONDS
  local line
  line=$(timeout 300 "$B" bench --seconds "$S" --json "$@" 2>>"$OUT/stderr.txt")
  echo "{\"label\":\"$label\",\"args\":\"$*\",\"wall_s\":$((SECONDS - t0)),\"report\":${line:-null}}" >>"$R"
  echo "$label done in $((SECONDS - t0)) s"
}
for n in 1 2 4 8; do
  run "shards$n" --groups 8 --subscribers 1 --shards "$n"
done
run "sub1" --groups 4 --subscribers 1
run "sub4" --groups 4 --subscribers 4
run "latency_spin" --groups 4 --subscribers 1 --rate 20000 --idle spin
run "latency_park" --groups 4 --subscribers 1 --rate 20000
run "tcp100" --groups 4 --subscribers 1 --tcp-clients 100 --tcp-stalled 1
run "tcp100_rate" --groups 4 --subscribers 1 --tcp-clients 100 --rate 100000
