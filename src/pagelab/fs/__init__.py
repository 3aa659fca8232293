"""Files: inodes, open files and descriptors, the ext4 filesystem the simulated machine's disk holds,
and the read/write/open system calls (Linux's fs/)."""
