"""Parquet export: TRL conversational columns, metadata in the schema, row groups streamed."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq

from prefs.formats import export, parquet
from prefs.formats.records import ExportPair


def test_the_streamed_file_reads_back_with_pyarrow(monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 3)
    pairs = [
        ExportPair(prompt=[{"role": "user", "content": f"q{i}"}], chosen=f"c{i}", rejected=f"r{i}",
                   weight=0.5)
        for i in range(7)
    ]
    chunks = list(export.stream(pairs, "parquet", metadata={"sha256": "abc", "rule": {"rule": "majority"}}))
    assert len(chunks) > 2  # row groups leave as they are written
    data = b"".join(chunks)
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == 7
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 3
    first = table.slice(0, 1).to_pylist()[0]
    assert first == {
        "prompt": [{"role": "user", "content": "q0"}],
        "chosen": [{"role": "assistant", "content": "c0"}],
        "rejected": [{"role": "assistant", "content": "r0"}],
        "weight": 0.5,
    }
    meta = json.loads(table.schema.metadata[b"prefloop"])
    assert meta == {"sha256": "abc", "rule": {"rule": "majority"}}
