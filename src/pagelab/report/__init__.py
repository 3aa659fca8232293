"""Reports: simulated vs real, counter by counter."""
