"""Admin pages about quality and rankings: dashboard, reviewer table, leaderboard, gold.

Doors only: the numbers come from `prefs.services.stats`, the charts from `prefs.charts`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from prefs.access import get_project_for_admin
from prefs.charts import Interval, bar_chart, heat_map, interval_chart
from prefs.models import Choice, PreferenceSet
from prefs.params import is_id
from prefs.services.gold import GoldError, comparison_set_gold, gold_comparisons
from prefs.services.stats import preference_set_stats, project_leaderboard, project_stats
from prefs.stats.winrate import wilson_interval

# Landis & Koch (1977): the usual words for κ and α bands, lower bound first.
_AGREEMENT_WORDS = (
    (0.81, "almost perfect"),
    (0.61, "substantial"),
    (0.41, "moderate"),
    (0.21, "fair"),
    (0.0, "slight"),
)


def agreement_word(value: float | None) -> str:
    if value is None:
        return "not enough overlap"
    for floor, word in _AGREEMENT_WORDS:
        if value >= floor:
            return word
    return "worse than chance"


def _share_rows(stats: dict, key: str, overall_label: str) -> list[Interval]:
    overall = stats[key]
    rows = [
        Interval(
            overall_label,
            overall["share"],
            overall["low"],
            overall["high"],
            note=f"{overall['n']} decisive verdicts",
        )
    ]
    side = "position" if key == "position_bias" else "length"
    for row in stats["reviewers"]:
        numbers = row[side]
        if not numbers["n"]:
            continue
        rows.append(
            Interval(
                row["username"],
                numbers["share"],
                numbers["low"],
                numbers["high"],
                note=f"{numbers['n']} decisive verdicts, p = {numbers['p_value']:.2g}",
                highlight=bool(row["flags"]),
            )
        )
    return rows


def _kappa_matrix(stats: dict) -> tuple[list[str], list[list[float | None]], list[list[int]]]:
    names = {row["reviewer_id"]: row["username"] for row in stats["reviewers"]}
    in_pairs = sorted(
        {p["rater_a"] for p in stats["agreement"]["pairs"]}
        | {p["rater_b"] for p in stats["agreement"]["pairs"]},
        key=lambda rid: names.get(rid, ""),
    )
    index = {rid: k for k, rid in enumerate(in_pairs)}
    values: list[list[float | None]] = [[None] * len(in_pairs) for _ in in_pairs]
    counts = [[0] * len(in_pairs) for _ in in_pairs]
    for pair in stats["agreement"]["pairs"]:
        i, j = index[pair["rater_a"]], index[pair["rater_b"]]
        values[i][j] = values[j][i] = pair["kappa"]
        counts[i][j] = counts[j][i] = pair["n"]
    return [names.get(rid, str(rid)) for rid in in_pairs], values, counts


def _chosen_set(request, project) -> PreferenceSet | None:
    """The version named by ?preference_set=ID, None for the whole project; 404 if unknown."""
    raw = request.GET.get("preference_set", "")
    if not raw:
        return None
    if not is_id(raw):
        raise Http404("No such preference set.")
    return get_object_or_404(PreferenceSet, project=project, pk=int(raw))


@require_GET
@login_required
def stats_dashboard(request, project_id: int):
    project = get_project_for_admin(request.user, project_id)
    chosen = _chosen_set(request, project)
    if chosen is None:
        stats = project_stats(project=project)
    else:
        stats = preference_set_stats(preference_set=chosen)
    charts = {
        "throughput": bar_chart(
            [(day["date"], day["judgments"]) for day in stats["throughput"]],
            title="Human judgments per day",
            unit=" judgments",
        ),
        "position": interval_chart(
            _share_rows(stats, "position_bias", "All reviewers"),
            title="Share of decisive verdicts for the left side, with 95% intervals",
            reference=0.5,
            domain=(0.0, 1.0),
            percent=True,
        ),
        "length": interval_chart(
            _share_rows(stats, "length_bias", "All reviewers"),
            title="Share of decisive verdicts for the longer response, with 95% intervals",
            reference=0.5,
            domain=(0.0, 1.0),
            percent=True,
        ),
    }
    labels, values, counts = _kappa_matrix(stats)
    if labels:
        charts["kappa"] = heat_map(
            labels,
            values,
            counts=counts,
            percent=False,
            centre=0.0,
            spread=1.0,
            title="Cohen's kappa for each pair of reviewers",
        )
    agreement = stats["agreement"]
    context = {
        "project": project,
        "stats": stats,
        "tab": "dashboard",
        "chosen_set": chosen,
        "versions": PreferenceSet.objects.filter(project=project).order_by("-version"),
        "charts": {name: mark_safe(svg) for name, svg in charts.items()},  # noqa: S308
        "flagged": sum(1 for row in stats["reviewers"] if row["flags"]),
        "fleiss_word": agreement_word(agreement["fleiss_kappa"]),
        "alpha_word": agreement_word(agreement["krippendorff_alpha"]),
    }
    return render(request, "prefs/stats/dashboard.html", context)


@require_GET
@login_required
def stats_reviewers(request, project_id: int):
    project = get_project_for_admin(request.user, project_id)
    stats = project_stats(project=project)
    gold_rows = [
        Interval(
            row["username"],
            row["gold"]["accuracy"],
            row["gold"]["low"],
            row["gold"]["high"],
            note=f"{row['gold']['correct']} of {row['gold']['n']} gold comparisons",
            highlight=bool(row["flags"]),
        )
        for row in stats["reviewers"]
        if row["gold"]
    ]
    chart = (
        interval_chart(
            gold_rows,
            title="Gold accuracy per reviewer, with 95% intervals",
            reference=stats["thresholds"]["min_gold_accuracy"],
            domain=(0.0, 1.0),
            percent=True,
        )
        if gold_rows
        else ""
    )
    agreement_rows = []
    for row in stats["reviewers"]:
        shared = row["agreement"]
        if not shared["n"]:
            continue
        low, high = wilson_interval(shared["agreement"] * shared["n"], shared["n"])
        agreement_rows.append(
            Interval(
                row["username"],
                shared["agreement"],
                low,
                high,
                note=f"{shared['n']} comparisons with a clear majority among the others",
                highlight=bool(row["flags"]),
            )
        )
    agreement_chart = (
        interval_chart(
            agreement_rows,
            title="Agreement with the majority of the other reviewers, with 95% intervals",
            reference=stats["thresholds"]["min_majority_agreement"],
            domain=(0.0, 1.0),
            percent=True,
        )
        if agreement_rows
        else ""
    )
    context = {
        "project": project,
        "stats": stats,
        "tab": "reviewers",
        "gold_chart": mark_safe(chart),  # noqa: S308
        "agreement_chart": mark_safe(agreement_chart),  # noqa: S308
    }
    return render(request, "prefs/stats/reviewers.html", context)


@require_GET
@login_required
def stats_leaderboard(request, project_id: int):
    project = get_project_for_admin(request.user, project_id)
    include_imported = request.GET.get("imported", "1") not in ("0", "false", "no")
    board = project_leaderboard(project=project, include_imported=include_imported)
    charts = {}
    if board["sources"]:
        charts["ratings"] = interval_chart(
            [
                Interval(
                    row["source"],
                    row["rating"],
                    row["rating_low"],
                    row["rating_high"],
                    note=f"{row['games']} comparisons",
                )
                for row in board["sources"]
            ],
            title="Bradley-Terry rating per source with 95% bootstrap intervals",
            reference=1000.0,
        )
        matrix = board["matrix"]
        charts["matrix"] = heat_map(
            matrix["sources"],
            matrix["rates"],
            counts=matrix["games"],
            title="Share of wins of the row source against the column source",
        )
    context = {
        "project": project,
        "board": board,
        "tab": "leaderboard",
        "include_imported": include_imported,
        "charts": {name: mark_safe(svg) for name, svg in charts.items()},  # noqa: S308
    }
    return render(request, "prefs/stats/leaderboard.html", context)


# Comparisons per page on the gold page.
GOLD_PAGE_SIZE = 25


@require_http_methods(["GET", "POST"])
@login_required
def stats_gold(request, project_id: int):
    """Gold comparisons with how reviewers did on each; admins mark or clear the answer."""
    project = get_project_for_admin(request.user, project_id)
    if request.method == "POST":
        raw_id = request.POST.get("comparison", "")
        choice = request.POST.get("gold_choice", "")
        try:
            if not is_id(raw_id):
                raise GoldError("choose a comparison")
            comparison = comparison_set_gold(
                project=project, comparison_id=int(raw_id), choice=choice
            )
        except GoldError as exc:
            messages.error(request, f"Nothing changed: {exc}.")
        else:
            if comparison.gold_choice:
                messages.success(
                    request,
                    f"Comparison {comparison.pk} is gold now; the right answer is "
                    f"{comparison.get_gold_choice_display()}.",
                )
            else:
                messages.success(request, f"Comparison {comparison.pk} is no longer gold.")
        return redirect(request.get_full_path())
    show_all = request.GET.get("show") == "all"
    page = Paginator(
        gold_comparisons(project=project, only_gold=not show_all), GOLD_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "tab": "gold",
        "page": page,
        "show_all": show_all,
        "choices": Choice.choices,
        "gold_total": gold_comparisons(project=project).count(),
    }
    return render(request, "prefs/stats/gold.html", context)
