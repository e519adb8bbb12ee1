"""The evaluation page: before/after side by side, automatic metrics, the live win rate."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from prefs.charts import Interval, interval_chart
from tuning.models import Evaluation, Job
from tuning.services.evaluations import (
    evaluation_rows,
    evaluation_shows_no_change,
    evaluation_summary,
)
from tuning.views.access import admin_required


def _context(evaluation: Evaluation, *, with_rows: bool) -> dict:
    summary = evaluation_summary(evaluation)
    chart = ""
    if summary["arms"]:
        chart = interval_chart(
            [
                Interval(
                    label=f"after vs {arm['arm'].replace('_', ' ')}",
                    value=arm["rate"],
                    low=arm["low"] if arm["n"] else None,
                    high=arm["high"] if arm["n"] else None,
                    note=f"{arm['n']} verdicts",
                )
                for arm in summary["arms"]
            ],
            title="Win rate of after, with 95% intervals (ties count half)",
            reference=0.5,
            domain=(0.0, 1.0),
            percent=True,
        )
    rows = evaluation_rows(evaluation) if with_rows else []
    pending = any(
        sum(o["verdicts"].values()) < o["required"] for row in rows for o in row["opponents"]
    )
    metrics = evaluation.metrics or {}
    return {
        "evaluation": evaluation,
        "job": evaluation.job,
        "summary": summary,
        "no_change": evaluation.job.state == Job.State.SUCCEEDED
        and evaluation_shows_no_change(metrics=metrics, arms=summary["arms"]),
        "cut_off_total": sum((metrics.get("cut_off") or {}).values()),
        "chart": mark_safe(chart),  # noqa: S308  (interval_chart escapes every text)
        "rows": rows,
        "metrics": metrics,
        # Keep polling while the job runs or verdicts are still to come.
        "live": evaluation.job.is_active or pending,
    }


def _evaluation(evaluation_id: int) -> Evaluation:
    return get_object_or_404(
        Evaluation.objects.select_related(
            "job", "project", "before_adapter", "after_adapter", "source_job", "base_model"
        ),
        pk=evaluation_id,
    )


@require_GET
@admin_required
def evaluation_page(request, evaluation_id: int):
    return render(request, "tuning/evaluation.html", _context(_evaluation(evaluation_id), with_rows=True))


@require_GET
@admin_required
def evaluation_live(request, evaluation_id: int):
    return render(request, "tuning/evaluation_live.html", _context(_evaluation(evaluation_id), with_rows=True))
