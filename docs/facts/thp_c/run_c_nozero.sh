#!/bin/bash
# Item c variant: use_zero_page=0 briefly (restored by trap), then run ./abc c.
F=/sys/kernel/mm/transparent_hugepage/use_zero_page
OLD=$(cat $F)
trap 'echo $OLD > $F; echo "restored use_zero_page=$(cat $F)"' EXIT
echo 0 > $F
echo "use_zero_page=$(cat $F)"
./abc c
