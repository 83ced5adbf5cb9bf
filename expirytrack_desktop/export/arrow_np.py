"""numpy <-> Arrow for the fast export path, without pyarrow's pandas shim.

``pa.array(...)`` and ``Array.to_numpy()`` import pandas the first time they run when it is
installed (pyarrow checks every input for pandas types): 0.17 s of CPU and ~35 MB at the
start of every export, for nothing. These helpers wrap and unwrap the buffers directly
(zero-copy where the layout allows), for the few plain types the exports use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# pyarrow type (its str) -> numpy dtype name, for the plain types the exports use
_DTYPES = {"int32": "int32", "int64": "int64", "double": "float64"}
_ARROW = {v: k for k, v in _DTYPES.items()}


def numpy_of(arr: Any) -> Any:
    """A pyarrow int64/float64/int32 Array or ChunkedArray without nulls as numpy (zero-copy
    for one chunk; nulls must be filled by the caller)."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    if arr.null_count:
        raise ValueError("numpy_of: the array has nulls")
    import numpy as np

    name = _DTYPES.get(str(arr.type))
    if name is None:
        raise TypeError(f"numpy_of: unsupported type {arr.type}")
    dtype = np.dtype(name)
    data = arr.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def arrow_of(values: Any, valid: Any = None) -> Any:
    """A 1-D numpy int32/int64/float64 array as a pyarrow Array (zero-copy when contiguous);
    ``valid``: a bool array, False where the value is null."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    name = _ARROW.get(values.dtype.name)
    if name is None:
        raise TypeError(f"arrow_of: unsupported dtype {values.dtype}")
    typ = pa.type_for_alias(name)
    bitmap = None
    nulls = 0
    if valid is not None:
        nulls = int(len(valid) - np.count_nonzero(valid))
        if nulls:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(typ, len(values), [bitmap, pa.py_buffer(values)], nulls)


def strings(values: Sequence[str]) -> Any:
    """A pyarrow ``string`` Array of ``values`` (no nulls)."""
    import numpy as np
    import pyarrow as pa

    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )
