"""Import and export codecs: pure functions over rows, no database.

One module per format (native, trl, hh, openai, prompts, candidates, kto, parquet). Importing
means `jsonl.read_records(stream, fmt)`: normalised records (`records.PairRecord`,
`PromptRecord`, `CandidateRecord`) or line-numbered errors. Exporting means
`export.stream(pairs, fmt)`: the bytes of the file for `records.ExportPair` rows.
"""
