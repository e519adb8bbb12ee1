"""Comparison groups: an evaluation's comparisons of one prompt (one per opponent, all holding the
new adapter's answer) share a group_key, and a reviewer is given at most one of a group.

Existing evaluation comparisons get their group here. Holds already given keep the group on the
first one per reviewer and group only: a reviewer who was shown several before this rule is
given no more of that group, and the new unique constraint holds.
"""

from django.db import migrations, models


def _group_evaluation_comparisons(apps, schema_editor):
    EvaluationPair = apps.get_model("tuning", "EvaluationPair")
    Comparison = apps.get_model("prefs", "Comparison")
    Assignment = apps.get_model("prefs", "Assignment")
    keys: dict[int, str] = {}
    for comparison_id, evaluation_id, prompt_id in EvaluationPair.objects.values_list(
        "comparison_id", "evaluation_id", "prompt_id"
    ).iterator():
        keys[comparison_id] = f"evaluation:{evaluation_id}:prompt:{prompt_id}"
    by_key: dict[str, list[int]] = {}
    for comparison_id, key in keys.items():
        by_key.setdefault(key, []).append(comparison_id)
    for key, ids in by_key.items():
        Comparison.objects.filter(pk__in=ids).update(group_key=key)
    seen: set[tuple[int, str]] = set()
    first_of_group: dict[str, list[int]] = {}
    for pk, reviewer_id, comparison_id in (
        Assignment.objects.filter(comparison__origin="evaluation").order_by("id")
        .values_list("id", "reviewer_id", "comparison_id").iterator()
    ):
        key = keys.get(comparison_id)
        if key is not None and (reviewer_id, key) not in seen:
            seen.add((reviewer_id, key))
            first_of_group.setdefault(key, []).append(pk)
    for key, ids in first_of_group.items():
        Assignment.objects.filter(pk__in=ids).update(group_key=key)


class Migration(migrations.Migration):

    dependencies = [
        ("prefs", "0009_assignment_revision"),
        ("tuning", "0002_jobs_evaluations_lineage"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparison",
            name="group_key",
            field=models.CharField(blank=True, default=None, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="assignment",
            name="group_key",
            field=models.CharField(blank=True, default=None, max_length=64, null=True),
        ),
        migrations.RunPython(_group_evaluation_comparisons, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("group_key__isnull", False)),
                fields=("reviewer", "group_key"),
                name="assignment_once_per_group",
            ),
        ),
    ]
