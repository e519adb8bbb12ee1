from django.urls import path

from tuning.views import adapters, evaluations, jobs, rounds

urlpatterns = [
    path("jobs/", jobs.job_list, name="tuning-jobs"),
    path("jobs/new/<str:kind>/", jobs.job_new, name="tuning-job-new"),
    path("jobs/<id:job_id>/", jobs.job_page, name="tuning-job"),
    path("jobs/<id:job_id>/live/", jobs.job_live, name="tuning-job-live"),
    path("jobs/<id:job_id>/cancel/", jobs.job_cancel_view, name="tuning-job-cancel"),
    path("adapters/", adapters.adapter_registry, name="tuning-adapters"),
    path("adapters/<id:adapter_id>/", adapters.adapter_page, name="tuning-adapter"),
    path("adapters/<id:adapter_id>/download/", adapters.adapter_download, name="tuning-adapter-download"),
    path("adapters/<id:adapter_id>/promote/", adapters.adapter_promote_view, name="tuning-adapter-promote"),
    path("projects/<id:project_id>/rollback/", adapters.project_rollback_view, name="tuning-project-rollback"),
    path("projects/<id:project_id>/rounds/", rounds.rounds_page, name="tuning-rounds"),
    path("projects/<id:project_id>/rounds/start/", rounds.round_start_view, name="tuning-round-start"),
    path("projects/<id:project_id>/rounds/settings/", rounds.round_policy_view, name="tuning-round-policy"),
    path("rounds/<id:round_id>/train/", rounds.round_train_view, name="tuning-round-train"),
    path("evaluations/<id:evaluation_id>/", evaluations.evaluation_page, name="tuning-evaluation"),
    path("evaluations/<id:evaluation_id>/live/", evaluations.evaluation_live, name="tuning-evaluation-live"),
]
