from django.contrib.auth import views as auth_views
from django.urls import path

from prefs.views import account, auth, data, home, projects, review, stats

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", auth.SiteLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account.account, name="prefs-account"),
    path("account/token/revoke/", account.account_token_revoke, name="prefs-account-token-revoke"),
    path("projects/new/", projects.project_new, name="prefs-project-new"),
    path("projects/<id:project_id>/settings/", projects.project_settings, name="prefs-project-settings"),
    path("projects/<id:project_id>/review/", review.review_page, name="prefs-review"),
    path(
        "projects/<id:project_id>/review/<id:assignment_id>/judge/",
        review.review_judge,
        name="prefs-review-judge",
    ),
    path(
        "projects/<id:project_id>/review/<id:assignment_id>/skip/",
        review.review_skip,
        name="prefs-review-skip",
    ),
    path("projects/<id:project_id>/stats/", stats.stats_dashboard, name="prefs-stats-dashboard"),
    path(
        "projects/<id:project_id>/stats/reviewers/",
        stats.stats_reviewers,
        name="prefs-stats-reviewers",
    ),
    path(
        "projects/<id:project_id>/stats/leaderboard/",
        stats.stats_leaderboard,
        name="prefs-stats-leaderboard",
    ),
    path("projects/<id:project_id>/stats/gold/", stats.stats_gold, name="prefs-stats-gold"),
    path("projects/<id:project_id>/import/", data.import_upload, name="prefs-import"),
    path(
        "projects/<id:project_id>/import/confirm/", data.import_confirm, name="prefs-import-confirm"
    ),
    path("projects/<id:project_id>/sets/", data.sets_page, name="prefs-sets"),
    path("sets/<id:set_id>/", data.set_page, name="prefs-set"),
]
