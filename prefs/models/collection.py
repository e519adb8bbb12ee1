"""The collection domain: projects, prompts, candidates, blind comparisons and judgments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F


class Project(models.Model):
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to reviewers.")
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Judgments (from different reviewers) each comparison needs."
    )
    hold_timeout_s = models.PositiveIntegerField(
        default=900, help_text="Seconds a reviewer may hold a comparison before it returns."
    )
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of a reviewer's queue drawn from gold comparisons (0-1)."
    )
    # Model output may carry links; shown as text, a reviewer sees where one points and cannot
    # follow it by a click (prefs/rendering.py).
    # db_default: the release still running during a deploy inserts projects without it.
    links_as_text = models.BooleanField(
        default=False, db_default=False, help_text="Show links in prompts, responses and guidelines as plain text."
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="review_projects", blank=True
    )
    base_model = models.ForeignKey(
        "tuning.BaseModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    active_adapter = models.ForeignKey(
        "tuning.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        HELDOUT = "heldout"

    # Indexed by `prompt_project_content` (project first), which also serves lookups by project.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="prompts", db_index=False
    )
    # The conversation so far: a list of {"role", "content"} ending with a user turn.
    messages = models.JSONField()
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    tags = models.JSONField(default=list, blank=True)
    external_id = models.CharField(max_length=200, blank=True, default="")
    # SHA-256 of the canonical JSON of `messages`: finds duplicates without comparing JSON.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Duplicates are looked up within a project; a plain index on the hash (and the
            # LIKE index Django adds to an indexed CharField) cost every import row two more
            # index inserts and served no query.
            models.Index(fields=["project", "content_hash"], name="prompt_project_content"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~models.Q(external_id=""),
                name="prompt_external_id_unique_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"Prompt {self.pk}"


class Candidate(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="candidates")
    text = models.TextField()
    # Provenance, never shown to reviewers: a free label ("imported", "human", an adapter's
    # name), the adapter that wrote it if any, and how it was sampled.
    source = models.CharField(max_length=200, default="imported")
    adapter = models.ForeignKey(
        "tuning.Adapter",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="candidates",
        db_index=False,
    )
    sampling = models.JSONField(default=dict, blank=True)
    text_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Only generated candidates name an adapter; imported ones (most rows) stay out.
            models.Index(
                fields=["adapter"], condition=models.Q(adapter__isnull=False), name="candidate_adapter"
            ),
        ]

    def __str__(self) -> str:
        return f"Candidate {self.pk} ({self.source})"


class Choice(models.TextChoices):
    """A verdict in canonical terms: A and B name candidates, never screen sides."""

    A = "A"
    B = "B"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Comparison(models.Model):
    class Origin(models.TextChoices):
        IMPORT = "import"
        EVALUATION = "evaluation"
        SAMPLING = "sampling"
        DEMO = "demo"
        MANUAL = "manual"

    # The project and the prompt are the candidates' (candidate_a.prompt, and its project), which
    # the database already checks: a second check of each cost every imported row two more
    # foreign-key lookups at commit. Django still cascades deletes. The project is indexed by
    # `comparison_pair` (project first), which also serves lookups by project.
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="comparisons",
        db_index=False,
        db_constraint=False,
    )
    prompt = models.ForeignKey(
        Prompt, on_delete=models.CASCADE, related_name="comparisons", db_constraint=False
    )
    candidate_a = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.IMPORT)
    required_judgments = models.PositiveSmallIntegerField(default=1)
    # Kept in step with the human Judgment rows and the open holds, under the comparison's row
    # lock, so the review queue reads one indexed row instead of counting per request.
    judgment_count = models.PositiveSmallIntegerField(default=0)
    open_holds = models.PositiveSmallIntegerField(default=0)
    open_slots = models.GeneratedField(
        expression=F("required_judgments") - F("judgment_count") - F("open_holds"),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    gold_choice = models.CharField(max_length=8, choices=Choice.choices, blank=True, default="")
    # Comparisons that share a text, of which one reviewer is given at most one: an evaluation's
    # answers to one prompt, one comparison per opponent, all holding the new adapter's answer
    # ("evaluation:<id>:prompt:<id>"). A reviewer shown two would spot the text that came back.
    # NULL, not "", for no group: NULL equals nothing, in the claim's check and in the index.
    group_key = models.CharField(max_length=64, null=True, blank=True, default=None)  # noqa: DJ001
    # SHA-256 over the prompt and the unordered pair of texts: the import's duplicate key.
    pair_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The review queue: open comparisons in the order they are handed out.
            models.Index(
                fields=["project", "judgment_count", "created_at", "id"],
                condition=models.Q(open_slots__gt=0, gold_choice=""),
                name="comparison_queue_open",
            ),
            models.Index(fields=["project", "pair_hash"], name="comparison_pair"),
        ]

    def __str__(self) -> str:
        return f"Comparison {self.pk}"


class Assignment(models.Model):
    """A reviewer's hold on a comparison, with the sides drawn for them."""

    class State(models.TextChoices):
        OPEN = "open"
        JUDGED = "judged"
        SKIPPED = "skipped"
        RELEASED = "released"
        EXPIRED = "expired"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    # Drawn once, when the reviewer is first given the comparison; a hold handed out again
    # (after it was released or expired) keeps its sides.
    left_is_a = models.BooleanField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    # Which issue of this hold a client was shown: counts up each time the hold is handed out
    # again. A judgment or skip naming an older revision is refused (a stale page or client).
    revision = models.PositiveIntegerField(default=1, db_default=1)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The comparison's group_key, copied when the hold is first given, so that the database
    # itself refuses a reviewer a second comparison of one group (assignment_once_per_group).
    group_key = models.CharField(max_length=64, null=True, blank=True, default=None)  # noqa: DJ001

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "reviewer"], name="assignment_once_per_reviewer"
            ),
            # One hold per reviewer, kept by the database: PostgreSQL's fast path for the next
            # comparison claims without locking the reviewer's row (prefs.services.assignment).
            models.UniqueConstraint(
                fields=["reviewer"], condition=models.Q(state="open"), name="assignment_one_open_hold"
            ),
            # One comparison per group per reviewer, whatever became of the hold: also what
            # the claim's check reads (prefs.services.assignment).
            models.UniqueConstraint(
                fields=["reviewer", "group_key"],
                condition=models.Q(group_key__isnull=False),
                name="assignment_once_per_group",
            ),
        ]
        indexes = [
            models.Index(fields=["comparison", "state", "expires_at"], name="assignment_holds"),
            models.Index(fields=["reviewer", "state"], name="assignment_reviewer_state"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk}"


class Judgment(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    # Null for a label that arrived with imported data; those are kept apart from human ones.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="judgments",
        db_index=False,
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgment"
    )
    imported = models.BooleanField(default=False)
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(default=2)
    rationale = models.TextField(blank=True, default="")
    # Which candidate the reviewer saw on the left: position bias is measured from it.
    left_is_a = models.BooleanField(null=True, blank=True)
    ms_on_task = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Human judgments only: imported labels (no reviewer) are most rows of a big import.
            models.Index(
                fields=["reviewer"], condition=models.Q(reviewer__isnull=False), name="judgment_reviewer"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "reviewer"],
                condition=models.Q(reviewer__isnull=False),
                name="judgment_once_per_reviewer",
            ),
            models.CheckConstraint(
                condition=models.Q(strength__gte=1, strength__lte=3), name="judgment_strength_1_3"
            ),
        ]

    def __str__(self) -> str:
        return f"Judgment {self.pk}: {self.choice}"
