from django.urls import path

from tuning.api import adapters, evaluations, jobs, rounds

urlpatterns = [
    path("jobs/", jobs.JobListView.as_view(), name="api-jobs"),
    path("jobs/<id:job_id>/", jobs.JobDetailView.as_view(), name="api-job"),
    path("jobs/<id:job_id>/events/", jobs.JobEventsView.as_view(), name="api-job-events"),
    path("jobs/<id:job_id>/cancel/", jobs.JobCancelView.as_view(), name="api-job-cancel"),
    path("adapters/", adapters.AdapterListView.as_view(), name="api-adapters"),
    path("adapters/<id:adapter_id>/", adapters.AdapterDetailView.as_view(), name="api-adapter"),
    path("adapters/<id:adapter_id>/promote/", adapters.AdapterPromoteView.as_view(), name="api-adapter-promote"),
    path("projects/<id:project_id>/rollback/", adapters.ProjectRollbackView.as_view(), name="api-project-rollback"),
    path("evaluations/<id:evaluation_id>/", evaluations.EvaluationDetailView.as_view(), name="api-evaluation"),
    path("projects/<id:project_id>/rounds/", rounds.ProjectRoundsView.as_view(), name="api-project-rounds"),
    path("projects/<id:project_id>/rounds/policy/", rounds.RoundPolicyView.as_view(), name="api-round-policy"),
    path("rounds/<id:round_id>/train/", rounds.RoundTrainView.as_view(), name="api-round-train"),
]
