#!/bin/sh
# Build every fact-finding program (gcc -O2). Run from this directory.
set -e
for f in abc d e e_zero f f_prctl g h j k b_pt tlbgeom; do gcc -O2 -Wall -Wno-unused-result -o "$f" "$f.c"; done
echo built
