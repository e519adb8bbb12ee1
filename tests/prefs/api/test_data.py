"""Import, preference-set and export endpoints: the happy paths, the errors, who may call them.

The end-to-end test takes the real Anthropic HH file through the API: import, freeze, export in
all six formats, read each back (parquet with pyarrow; trl rows with `datasets` and through
TRL's own DPO dataset preparation), and re-import every pairwise export into a fresh project,
whose freeze must give the very same pairs (same SHA-256).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prefs.formats import hh
from prefs.models import Comparison, Judgment, PreferenceSet, Project, Prompt

pytestmark = pytest.mark.django_db
HH_FILE = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        key, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key.key}")
    return client


def _native(i: int, preference=0) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "responses": [{"text": f"Yes {i}", "source": "a"}, {"text": f"No {i}", "source": "b"}],
        "preference": preference,
    }


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _post_raw(client, project, body: bytes, query: str = ""):
    return client.post(
        f"/api/v1/projects/{project.pk}/import/{query}", data=body, content_type="application/jsonl"
    )


def _export(client, frozen: dict, fmt: str):
    response = client.get(f"/api/v1/preference-sets/{frozen['id']}/export/?format={fmt}")
    assert response.status_code == 200, response.content[:300]
    return response, b"".join(response.streaming_content)


# --- import -------------------------------------------------------------------------------


def test_a_raw_body_imports_and_answers_what_was_created(admin_user, project):
    response = _post_raw(_client(admin_user), project, _jsonl([_native(1), _native(2, None)]))
    assert response.status_code == 201
    assert response.json() == {
        "created": {"prompts": 2, "candidates": 4, "comparisons": 2, "judgments": 1},
        "duplicates": 0,
        "format": "native",
        "rows": 2,
    }


def test_a_multipart_gzipped_upload_imports(admin_user, project):
    upload = io.BytesIO(gzip.compress(_jsonl([_native(i) for i in range(3)])))
    upload.name = "rows.jsonl.gz"
    response = _client(admin_user).post(
        f"/api/v1/projects/{project.pk}/import/?format=native", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201
    assert response.json()["created"]["comparisons"] == 3


def test_a_bad_file_answers_400_with_every_line_and_writes_nothing(admin_user, project):
    rows = [_native(i) for i in range(5)]
    rows[3]["responses"] = [{"text": "only one"}]
    body = _jsonl(rows) + b"not json\n"
    response = _post_raw(_client(admin_user), project, body)
    assert response.status_code == 400
    data = response.json()
    assert data["error_count"] == 2
    assert [(e["line"], e["field"]) for e in data["errors"]] == [(4, "responses"), (6, "")]
    assert "Nothing imported" in data["detail"]
    assert not Comparison.objects.exists()


def test_a_file_over_the_limit_answers_413(admin_user, project, settings):
    settings.PREFLOOP_IMPORT_MAX_BYTES = 1000
    response = _post_raw(_client(admin_user), project, _jsonl([_native(i) for i in range(50)]))
    assert response.status_code == 413
    assert "import limit of 1,000 bytes" in response.json()["detail"]
    assert not Prompt.objects.exists()


def test_an_unknown_format_is_refused(admin_user, project):
    response = _post_raw(_client(admin_user), project, _jsonl([_native(1)]), "?format=csv")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "format"


def test_a_named_format_that_does_not_fit_reports_each_line(admin_user, project):
    response = _post_raw(_client(admin_user), project, _jsonl([_native(1)]), "?format=openai")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} >= {"input", "preferred_output"}


def test_import_is_for_admins_only(reviewer, outsider, project):
    body = _jsonl([_native(1)])
    assert _post_raw(_client(), project, body).status_code == 401
    assert _post_raw(_client(reviewer), project, body).status_code == 403
    assert _post_raw(_client(outsider), project, body).status_code == 403
    assert not Comparison.objects.exists()


def test_an_admin_importing_into_a_missing_project_gets_404(admin_user):
    assert _post_raw(_client(admin_user), Project(pk=999), _jsonl([_native(1)])).status_code == 404


# --- preference sets ----------------------------------------------------------------------


def _labelled_project(project, n: int = 3) -> None:
    from prefs.services.imports import import_run

    import_run(project=project, stream=io.BytesIO(_jsonl([_native(i) for i in range(n)])))


def test_freezing_answers_the_new_version(admin_user, project):
    _labelled_project(project)
    client = _client(admin_user)
    response = client.post(
        f"/api/v1/projects/{project.pk}/preference-sets/",
        {"rule": "majority", "min_judgments": 1, "min_agreement": 0.0, "include_ties": False,
         "include_imported": True},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["pairs"], len(body["sha256"])) == (1, 3, 64)
    assert body["rule"]["include_imported"] is True
    assert body["exports"]["trl"].endswith(f"/preference-sets/{body['id']}/export/?format=trl")
    second = client.post(f"/api/v1/projects/{project.pk}/preference-sets/", {}, format="json").json()
    assert second["version"] == 2
    assert second["diff"] == {"previous": body["id"], "previous_version": 1, "added": 0,
                              "removed": 0, "flipped": 0}


def test_a_bad_rule_is_refused_field_by_field(admin_user, project):
    response = _client(admin_user).post(
        f"/api/v1/projects/{project.pk}/preference-sets/",
        {"min_agreement": 3, "rule": "unanimous", "colour": "red"},
        format="json",
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"colour"}
    assert not PreferenceSet.objects.exists()


def test_versions_list_with_filters_and_read_one(admin_user, project):
    _labelled_project(project)
    client = _client(admin_user)
    url = f"/api/v1/projects/{project.pk}/preference-sets/"
    made = [client.post(url, {}, format="json").json() for _ in range(3)]
    listed = client.get(url).json()
    assert [s["version"] for s in listed["results"]] == [3, 2, 1]
    assert [s["version"] for s in client.get(f"{url}?version=2").json()["results"]] == [2]
    assert client.get(f"/api/v1/preference-sets/{made[0]['id']}/").json()["version"] == 1


@pytest.mark.parametrize("who", ["anonymous", "reviewer", "outsider"])
def test_preference_sets_are_for_admins_only(who, reviewer, outsider, admin_user, project):
    _labelled_project(project)
    frozen = _client(admin_user).post(f"/api/v1/projects/{project.pk}/preference-sets/", {}, format="json").json()
    client = _client({"anonymous": None, "reviewer": reviewer, "outsider": outsider}[who])
    expected = 401 if who == "anonymous" else 403
    assert client.get(f"/api/v1/projects/{project.pk}/preference-sets/").status_code == expected
    assert client.post(f"/api/v1/projects/{project.pk}/preference-sets/", {}, format="json").status_code == expected
    assert client.get(f"/api/v1/preference-sets/{frozen['id']}/").status_code == expected
    assert client.get(f"/api/v1/preference-sets/{frozen['id']}/export/?format=trl").status_code == expected
    assert PreferenceSet.objects.count() == 1


def test_export_names_its_version_in_headers_and_refuses_unknown_formats(admin_user, project):
    _labelled_project(project)
    client = _client(admin_user)
    frozen = client.post(f"/api/v1/projects/{project.pk}/preference-sets/", {}, format="json").json()
    response, data = _export(client, frozen, "trl")
    assert response["X-Prefloop-Sha256"] == frozen["sha256"]
    assert response["X-Prefloop-Version"] == "1"
    assert json.loads(response["X-Prefloop-Rule"]) == frozen["rule"]
    assert 'filename="project' in response["Content-Disposition"]
    assert len(data.splitlines()) == 3
    assert client.get(f"/api/v1/preference-sets/{frozen['id']}/export/?format=csv").status_code == 400
    assert client.get("/api/v1/preference-sets/999/export/?format=trl").status_code == 404


# --- the real HH file, end to end ---------------------------------------------------------


def _tiny_model(folder: Path):
    """A tiny random Llama and a byte-level BPE tokenizer with a ChatML template, offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["How can I help you today?", "I cannot help with that.", "Human: Assistant:"] * 20,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<|im_end|>",
                                        unk_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
        " + '<|im_end|>' + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # Loaded back from its folder, as TRL expects of a model (it reads the name or path).
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _through_trl_dpo(path: Path, tmp_path: Path, *, rows: int = 24):
    """Runs TRL's own DPO dataset preparation (prompt extraction, EOS, tokenisation) on a file."""
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational, maybe_extract_prompt

    dataset = load_dataset("json", data_files=str(path), split="train")
    for row in dataset.select(range(rows)):
        assert maybe_extract_prompt(row) == row  # the prompt is explicit
    model, tokenizer = _tiny_model(tmp_path)
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), report_to=[], max_length=4096,
                       per_device_train_batch_size=2, use_cpu=True),
        train_dataset=dataset.select(range(rows)),
        processing_class=tokenizer,
    )
    prepared = trainer.train_dataset
    assert all(len(ids) > 0 for ids in prepared["chosen_ids"])
    return dataset, is_conversational(dataset[0])


def test_the_hh_file_goes_in_and_out_in_every_format(admin_user, tmp_path):
    if not HH_FILE.exists():
        pytest.skip("the shared HH file is not on this machine")
    import pyarrow.parquet as pq

    client = _client(admin_user)
    project = Project.objects.create(name="HH")
    imported = _post_raw(client, project, HH_FILE.read_bytes())
    assert imported.status_code == 201, imported.content[:500]
    originals = [json.loads(x) for x in gzip.decompress(HH_FILE.read_bytes()).splitlines()]
    assert imported.json()["created"]["comparisons"] == len(originals) - imported.json()["duplicates"] == 2312
    assert Judgment.objects.filter(imported=True, reviewer=None).count() == 2312

    frozen = client.post(f"/api/v1/projects/{project.pk}/preference-sets/", {}, format="json").json()
    assert frozen["pairs"] == 2312

    files = {}
    for fmt in ("trl", "trl-conversational", "kto", "openai", "hh", "parquet", "native"):
        response, data = _export(client, frozen, fmt)
        assert response["X-Prefloop-Sha256"] == frozen["sha256"]
        files[fmt] = tmp_path / f"export-{fmt}.{'parquet' if fmt == 'parquet' else 'jsonl'}"
        files[fmt].write_bytes(data)

    # hh: the transcripts come back exactly.
    exported_hh = [json.loads(x) for x in files["hh"].read_bytes().splitlines()]
    assert exported_hh == originals
    # trl (text) and trl-conversational load with datasets and pass TRL's DPO preparation.
    trl_rows, conversational = _through_trl_dpo(files["trl"], tmp_path / "a")
    assert not conversational and len(trl_rows) == 2312
    assert trl_rows[0]["prompt"] + trl_rows[0]["chosen"] == originals[0]["chosen"]
    conv_rows, conversational = _through_trl_dpo(files["trl-conversational"], tmp_path / "b")
    assert conversational and len(conv_rows) == 2312
    assert hh.render_transcript(conv_rows[5]["prompt"], conv_rows[5]["chosen"][0]["content"]) == originals[5]["chosen"]
    # kto: a desirable and an undesirable row per pair.
    kto = [json.loads(x) for x in files["kto"].read_bytes().splitlines()]
    assert len(kto) == 2 * 2312
    assert [r["label"] for r in kto[:2]] == [True, False]
    # openai: one assistant message per output, the context as given.
    first = json.loads(files["openai"].read_bytes().splitlines()[0])
    assert first["input"]["messages"][-1]["role"] == "user"
    assert [m["role"] for m in first["preferred_output"] + first["non_preferred_output"]] == ["assistant"] * 2
    # parquet: pyarrow reads it, with the version in its schema metadata.
    table = pq.read_table(files["parquet"])
    assert table.num_rows == 2312
    assert json.loads(table.schema.metadata[b"prefloop"])["sha256"] == frozen["sha256"]
    assert table.slice(0, 1).to_pylist()[0]["chosen"] == conv_rows[0]["chosen"]

    # Export then import reproduces the same pairs: a fresh project's freeze hashes the same.
    for fmt in ("trl", "trl-conversational", "openai", "hh", "native"):
        again = Project.objects.create(name=f"again {fmt}")
        response = _post_raw(client, again, files[fmt].read_bytes())
        assert response.status_code == 201, (fmt, response.content[:300])
        assert response.json()["format"] == ("trl" if fmt.startswith("trl") else fmt)
        refrozen = client.post(f"/api/v1/projects/{again.pk}/preference-sets/", {}, format="json").json()
        assert (fmt, refrozen["pairs"], refrozen["sha256"]) == (fmt, 2312, frozen["sha256"])
