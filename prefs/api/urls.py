from django.urls import path

from prefs.api import review, stats

urlpatterns = [
    path("projects/<int:project_id>/next/", review.NextView.as_view(), name="api-project-next"),
    path(
        "assignments/<int:assignment_id>/judgment/",
        review.JudgmentView.as_view(),
        name="api-assignment-judgment",
    ),
    path("assignments/<int:assignment_id>/skip/", review.SkipView.as_view(), name="api-assignment-skip"),
    path("projects/<int:project_id>/stats/", stats.StatsView.as_view(), name="api-project-stats"),
    path(
        "projects/<int:project_id>/leaderboard/",
        stats.LeaderboardView.as_view(),
        name="api-project-leaderboard",
    ),
]
