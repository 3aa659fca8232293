"""User-space C library models that run over the Process API (glibc's malloc: libc/malloc.py)."""
