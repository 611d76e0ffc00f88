"""The year's targets of the bureau's work plan (DOMAIN.md), as data."""
from __future__ import annotations

from dataclasses import dataclass

from scheduler.events.kinds import POPULARIZATION_KINDS, Kind
from scheduler.targets.models import Metric


@dataclass(frozen=True)
class TargetSpec:
    """A target before it is stored for a year."""

    key: str
    label_zh: str
    label_en: str
    metric: Metric
    target_value: int
    kinds: tuple[str, ...] = ()
    outcome_field: str | None = None
    unit_zh: str = "场"
    unit_en: str = "events"


CITY_TARGETS: tuple[TargetSpec, ...] = (
    TargetSpec(
        "popularization_events", "科普活动(科普嘉年华、全国科技活动周、科普研学游等)",
        "Science-popularization events (carnivals, tech week, study tours)",
        Metric.COUNT_EVENTS, 5, tuple(k.value for k in POPULARIZATION_KINDS),
    ),
    TargetSpec("matchmaking_fairs", "“邑科汇”科技成果对接会", "Technology-achievement matchmaking fairs",
               Metric.COUNT_EVENTS, 4, (Kind.MATCHMAKING.value,)),
    TargetSpec("achievements_matched", "科技成果成功对接", "Achievements matched",
               Metric.SUM_OUTCOME, 30, (Kind.MATCHMAKING.value,), "achievements_matched", "项", "achievements"),
    TargetSpec("achievements_commercialized", "科技成果落地转化", "Achievements commercialized",
               Metric.SUM_OUTCOME, 10, (Kind.MATCHMAKING.value,), "achievements_commercialized", "项", "achievements"),
    TargetSpec("innovation_contest", "“科技杯”双创大赛", "Innovation & entrepreneurship contest",
               Metric.COUNT_EVENTS, 1, (Kind.CONTEST.value,)),
    TargetSpec("provincial_science_bases", "新增省级科普基地", "New provincial science-popularization bases",
               Metric.MANUAL, 8, unit_zh="家", unit_en="bases"),
    TargetSpec("joint_rd_projects", "技术攻关合作项目", "Joint R&D projects with universities and institutes",
               Metric.MANUAL, 50, unit_zh="项", unit_en="projects"),
    TargetSpec("basic_research_projects", "省级以上基础研究项目立项", "Provincial basic-research projects",
               Metric.MANUAL, 30, unit_zh="项", unit_en="projects"),
)
