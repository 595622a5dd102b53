"""Copies of DuckDB files that keep their holes. DuckDB gives each table at least one 256 KB
block, mostly zeros at test sizes (about 5% of a 500-model template is data): a baseline template
is written with its runs of zero pages left as holes (:func:`write_sparse_copy`), and each test's
copy of it writes only the ranges that hold data (:func:`copy_data_extents`).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

PAGE_BYTES = 4096


def write_sparse_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, leaving each page of zeros as a hole: the same bytes
    when read, and a template's copies (:func:`copy_data_extents`) write only its data."""
    zero = bytes(PAGE_BYTES * 16)
    with open(source, "rb") as read, open(target, "wb") as write:
        while chunk := read.read(len(zero)):
            if chunk == zero[: len(chunk)]:  # most of a template: one comparison for 16 pages
                write.seek(len(chunk), os.SEEK_CUR)
                continue
            view = memoryview(chunk)
            for start in range(0, len(view), PAGE_BYTES):
                page = view[start : start + PAGE_BYTES]
                if page == zero[: len(page)]:
                    write.seek(len(page), os.SEEK_CUR)
                else:
                    write.write(page)
        write.truncate()  # the size counts a trailing hole too


def copy_data_extents(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` in the kernel, only the ranges that hold data: the holes
    of a sparse template stay holes and read as zeros, as in ``source``. Where the file
    system or platform cannot say where the data is, or cannot copy ranges, a plain copy."""
    if not hasattr(os, "copy_file_range") or not hasattr(os, "SEEK_DATA"):
        shutil.copyfile(source, target)
        return
    try:
        with open(source, "rb") as read, open(target, "wb") as write:
            size = os.fstat(read.fileno()).st_size
            offset = 0
            while offset < size:
                try:
                    start = os.lseek(read.fileno(), offset, os.SEEK_DATA)
                except OSError as error:
                    if error.errno != errno.ENXIO:  # ENXIO: nothing but a hole after offset
                        raise
                    break
                end = os.lseek(read.fileno(), start, os.SEEK_HOLE)
                while start < end:
                    copied = os.copy_file_range(read.fileno(), write.fileno(), end - start, start, start)
                    if copied == 0:
                        raise OSError(errno.EIO, f"{source} ended while it was copied")
                    start += copied
                offset = end
            os.ftruncate(write.fileno(), size)
    except OSError:  # copy_file_range across file systems on older kernels, say
        shutil.copyfile(source, target)
