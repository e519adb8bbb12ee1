"""The launch form, built from the kind's parameter specs (defaults and help text included).

The form only shapes input; whether the launch makes sense (the set is not empty, the adapter
belongs to the project's base model ...) is decided by `job_launch`, whose reasons the view
puts back on the form's fields.
"""

from __future__ import annotations

from django import forms
from django.db.models import Q

from prefs.models import PreferenceSet, Project
from tuning.models import Adapter, Job
from tuning.services.launch import SET_KINDS
from tuning.services.params import SPECS, Param

_NONE = ""


def _param_field(param: Param) -> forms.Field:
    common = {"label": param.title, "help_text": param.help, "required": False}
    if param.type == "bool":
        return forms.BooleanField(initial=param.default, **common)
    if param.type == "int":
        return forms.IntegerField(
            initial=param.default,
            min_value=int(param.min) if param.min is not None else None,
            max_value=int(param.max) if param.max is not None else None,
            **common,
        )
    if param.type == "float":
        return forms.FloatField(initial=param.default, min_value=param.min, max_value=param.max, **common)
    if param.type == "choice":
        return forms.ChoiceField(choices=[(c, c) for c in param.choices], initial=param.default, **common)
    if param.type == "text":
        return forms.CharField(
            initial=param.default, widget=forms.Textarea(attrs={"rows": 3}),
            max_length=param.max_length or None, **common,
        )
    if param.type == "int_list":
        return forms.CharField(initial="", **common)
    raise AssertionError(param.type)


def _adapter_label(adapter: Adapter) -> str:
    project = f", {adapter.project.name}" if adapter.project_id else ""
    return f"{adapter.name} (#{adapter.pk}, base {adapter.base_model.name}{project})"


class LaunchForm(forms.Form):
    """One kind's launch form; `param_names` are its hyperparameters, in spec order."""

    def __init__(self, *args, kind: str, project: Project | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        projects = Project.objects.select_related("base_model").order_by("name")
        self.fields["project"] = forms.ChoiceField(
            choices=[(p.pk, f"{p.name} (base: {p.base_model.name if p.base_model else 'none set'})") for p in projects],
            initial=project.pk if project else None,
            help_text="The project whose data, prompts and reviewers the job uses.",
        )
        sets = PreferenceSet.objects.select_related("project").order_by("project__name", "-version")
        if project is not None:
            sets = sets.filter(project=project)
        if kind in SET_KINDS:
            self.fields["preference_set"] = forms.ChoiceField(
                choices=[(_NONE, "— choose a frozen version —")]
                + [(s.pk, f"{s.project.name} v{s.version} ({s.pair_count} pairs)") for s in sets],
                initial=sets[0].pk if project is not None and sets else _NONE,
                help_text="The frozen preference set version to learn from.",
            )
        adapters = Adapter.objects.filter(kind=Adapter.Kind.POLICY).select_related("base_model", "project")
        if project is not None:
            adapters = adapters.filter(base_model_id=project.base_model_id)
        adapter_help = {
            Job.Kind.EVALUATE: "The adapter to evaluate (the 'after' side).",
            Job.Kind.REWARD_MODEL: "Not used: a reward model starts from the base model.",
        }.get(kind, "The adapter to start from; empty: a fresh adapter on the project's base model.")
        if kind != Job.Kind.REWARD_MODEL:
            start = project.active_adapter_id if project is not None and kind != Job.Kind.EVALUATE else None
            self.fields["adapter"] = forms.ChoiceField(
                choices=[(_NONE, "— bare base model —" if kind != Job.Kind.EVALUATE else "— choose —")]
                + [(a.pk, _adapter_label(a)) for a in adapters.order_by("-id")],
                required=False,
                initial=start or _NONE,
                help_text=adapter_help,
            )
        self.param_names = []
        for param in SPECS[kind]:
            self.fields[param.name] = _param_field(param)
            self.param_names.append(param.name)
        self.advanced_names = {p.name for p in SPECS[kind] if p.advanced}
        if kind == Job.Kind.REJECTION_SAMPLING:
            self._reward_picker(project)

    def _reward_picker(self, project: Project | None) -> None:
        """The scoring adapter as a list of the project's adapters, not an id to look up.

        Its default is one that works: the adapter answers are sampled from when the project has
        an active one, else the newest DPO adapter (implicit reward), else the newest reward model.
        """
        scorers = Adapter.objects.select_related("base_model", "project").order_by("-id")
        if project is not None:
            scorers = scorers.filter(base_model_id=project.base_model_id).filter(
                Q(project=project) | Q(project__isnull=True)
            )
        policies = [a for a in scorers if a.kind == Adapter.Kind.POLICY]
        rewards = [a for a in scorers if a.kind == Adapter.Kind.REWARD]
        choices: list = [(_NONE, "— the adapter the answers are sampled from —")]
        if policies:
            choices.append(("DPO adapters (implicit reward)", [(a.pk, _adapter_label(a)) for a in policies]))
        if rewards:
            choices.append(("Reward models", [(a.pk, _adapter_label(a)) for a in rewards]))
        initial = _NONE
        if project is not None and project.active_adapter_id is None:
            if policies:
                initial = policies[0].pk
            elif rewards:
                initial = rewards[0].pk
                self.fields["reward"].initial = "model"
        if policies or rewards:
            help_text = (
                "What scores the answers: a DPO adapter (its implicit reward against its parent) or "
                "a reward model. Empty: the adapter the answers are sampled from."
            )
        else:
            help_text = (
                "This project has no adapter to score answers with yet: train one with a DPO job "
                "(or a reward model) first."
            )
        self.fields["reward_adapter"] = forms.TypedChoiceField(
            choices=choices, coerce=int, empty_value=None, required=False, initial=initial,
            label="Scored by", help_text=help_text,
        )
        self._reward_kinds = {a.pk: a.kind for a in policies + rewards}

    def clean(self):
        data = super().clean()
        picked = data.get("reward_adapter") if self.kind == Job.Kind.REJECTION_SAMPLING else None
        # The picked adapter says which reward it gives; the separate choice cannot contradict it.
        if picked is not None and picked in self._reward_kinds:
            data["reward"] = "model" if self._reward_kinds[picked] == Adapter.Kind.REWARD else "implicit"
        return data

    def basic_fields(self):
        return [self[name] for name in self.fields if name not in self.advanced_names]

    def advanced_fields(self):
        return [self[name] for name in self.fields if name in self.advanced_names]

    def launch_arguments(self) -> dict:
        """What job_launch takes, from the cleaned data; empty numbers mean 'not given'."""
        data = self.cleaned_data
        params = {}
        specs = {p.name: p for p in SPECS[self.kind]}
        for name in self.param_names:
            value = data.get(name)
            spec = specs[name]
            if value is None or value == "":
                if spec.nullable:
                    params[name] = None
                elif spec.type == "text":
                    params[name] = ""
                # A required number left empty takes its default.
                continue
            params[name] = value
        return {
            "kind": self.kind,
            "project_id": int(data["project"]),
            "preference_set_id": int(data["preference_set"]) if data.get("preference_set") else None,
            "adapter_id": int(data["adapter"]) if data.get("adapter") else None,
            "params": params,
        }

    def add_launch_errors(self, errors: list[dict]) -> None:
        for error in errors:
            name = error["field"].removeprefix("params.")
            self.add_error(name if name in self.fields else None, error["message"])
