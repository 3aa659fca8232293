#!/bin/sh
# item j bands (helper H11): run from a dir holding the built fc, with F made by "fc mk F 64"
F=/var/tmp/h11/b64
for mode in "none rand" "seq rand" "none asc" "random asc"; do
 for i in 1 2 3 4 5 6 7 8 9 10; do
  echo "== cold $mode run $i"; ./fc evict $F >/dev/null; ./fc fault $F shared read $mode | grep -v "order sequence\|faults per\|smaps [RPS]\|smaps Vm\|smaps Anon\|^map "
 done
done
