from django.urls import path

from prefs.api import auth, data, projects, review, stats

urlpatterns = [
    path("auth/token/", auth.TokenView.as_view(), name="api-auth-token"),
    path("projects/<id:project_id>/next/", review.NextView.as_view(), name="api-project-next"),
    path(
        "assignments/<id:assignment_id>/judgment/",
        review.JudgmentView.as_view(),
        name="api-assignment-judgment",
    ),
    path("assignments/<id:assignment_id>/skip/", review.SkipView.as_view(), name="api-assignment-skip"),
    path("projects/<id:project_id>/stats/", stats.StatsView.as_view(), name="api-project-stats"),
    path(
        "projects/<id:project_id>/leaderboard/",
        stats.LeaderboardView.as_view(),
        name="api-project-leaderboard",
    ),
    path("projects/", projects.ProjectListView.as_view(), name="api-projects"),
    path("projects/<id:project_id>/", projects.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<id:project_id>/import/", data.ImportView.as_view(), name="api-project-import"),
    path(
        "projects/<id:project_id>/preference-sets/",
        data.PreferenceSetListView.as_view(),
        name="api-project-preference-sets",
    ),
    path("preference-sets/<id:set_id>/", data.PreferenceSetDetailView.as_view(), name="api-preference-set"),
    path(
        "preference-sets/<id:set_id>/export/",
        data.PreferenceSetExportView.as_view(),
        name="api-preference-set-export",
    ),
]
