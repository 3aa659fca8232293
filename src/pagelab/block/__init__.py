"""The block layer: bios submitted to the machine's disk (Linux's block/)."""
