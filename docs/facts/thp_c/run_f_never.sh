#!/bin/bash
# Item f with THP enabled=never briefly (restored by trap): does placement depend on it?
F=/sys/kernel/mm/transparent_hugepage/enabled
OLD=$(sed -e 's/.*\[\(.*\)\].*/\1/' $F)
trap 'echo $OLD > $F; echo "restored enabled: $(cat $F)"' EXIT
echo never > $F
echo "enabled: $(cat $F)"
./f 3 | grep -E "==|->|ALIGNED|unaligned" | head -80
