"""Forms for admins' pages: they validate and shape, services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from prefs.models import Project


class ProjectForm(forms.ModelForm):
    reviewers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_staff=False, is_active=True).order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Who may review this project's comparisons.",
    )

    class Meta:
        model = Project
        fields = ["name", "guidelines", "overlap", "hold_timeout_s", "gold_rate", "links_as_text", "base_model"]
        labels = {
            "links_as_text": "Show links as text",
            "overlap": "Judgments per comparison (k)",
            "hold_timeout_s": "Hold timeout (seconds)",
            "gold_rate": "Gold rate (0-1)",
        }
        help_texts = {
            "guidelines": "Markdown, shown to reviewers above every comparison.",
            "overlap": "Each comparison is judged by this many different reviewers. Applies to "
            "comparisons created from now on.",
        }
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 8})}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A project needs a name.")
        return name

    def clean_overlap(self):
        overlap = self.cleaned_data["overlap"]
        if not 1 <= overlap <= 20:
            raise forms.ValidationError("Between 1 and 20 reviewers per comparison.")
        return overlap

    def clean_hold_timeout_s(self):
        seconds = self.cleaned_data["hold_timeout_s"]
        if not 30 <= seconds <= 24 * 3600:
            raise forms.ValidationError("Between 30 seconds and 24 hours.")
        return seconds

    def clean_gold_rate(self):
        rate = self.cleaned_data["gold_rate"]
        if not 0.0 <= rate <= 1.0:
            raise forms.ValidationError("A share between 0 and 1.")
        return rate
