"""Parquet with TRL's conversational preference columns (prompt, chosen, rejected, weight),
written row group by row group so memory stays flat, with the set's metadata (hash, rule) in
the schema's key-value metadata under `prefloop`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

NAME = "parquet"
# Rows per row group: about a few MB of text, read back by datasets in one go.
ROW_GROUP_ROWS = 10_000


class _Sink:
    """A write-only file object that hands its bytes out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def schema(metadata: dict):
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("prompt", pa.list_(message)),
            ("chosen", pa.list_(message)),
            ("rejected", pa.list_(message)),
            ("weight", pa.float64()),
        ],
        metadata={"prefloop": json.dumps(metadata, sort_keys=True)},
    )


def stream(rows: Iterable[dict], *, metadata: dict) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_schema = schema(metadata)
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), table_schema)
    batch: list[dict] = []

    def flush_batch():
        writer.write_table(pa.Table.from_pylist(batch, schema=table_schema))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= ROW_GROUP_ROWS:
            flush_batch()
            yield sink.take()
    if batch:
        flush_batch()
    writer.close()
    yield sink.take()
