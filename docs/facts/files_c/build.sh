#!/bin/sh
# build the probe: gcc -O2 -Wall
cd "$(dirname "$0")" && gcc -O2 -Wall -Wno-misleading-indentation -Wno-unused-result -o fc fc.c && gcc -O2 -Wall -Wno-misleading-indentation -Wno-unused-result -o fc2 fc2.c
