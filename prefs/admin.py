from django.contrib import admin

from prefs.models import Assignment, Candidate, Comparison, Judgment, Project, Prompt


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "overlap", "hold_timeout_s", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["reviewers"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "split", "external_id", "created_at"]
    list_filter = ["split", "project"]
    search_fields = ["external_id"]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "source", "adapter", "created_at"]
    list_filter = ["source"]
    raw_id_fields = ["prompt", "adapter"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = [
        "id", "project", "origin", "judgment_count", "required_judgments", "gold_choice",
    ]
    list_filter = ["origin", "project"]
    raw_id_fields = ["prompt", "candidate_a", "candidate_b"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "reviewer", "state", "left_is_a", "expires_at"]
    list_filter = ["state"]
    raw_id_fields = ["comparison", "reviewer"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "reviewer", "choice", "strength", "imported", "created_at"]
    list_filter = ["choice", "imported"]
    raw_id_fields = ["comparison", "reviewer", "assignment"]
