"""What `dialer tune` writes: report.json, patch.yaml and the two answer-rate plots."""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from rules.tuning import Tuning, TuningSettings
from rules.tuning_hours import DAY_KEYS, Change, Rate

REPORT = "report.json"
PATCH = "patch.yaml"
HOUR_PLOT = "answer-rate-by-hour.png"
DAY_PLOT = "answer-rate-by-day.png"
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
              "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")


@dataclass(frozen=True, slots=True, kw_only=True)
class TuneRun:
    """One run of `dialer tune`: the campaign, where it lives, and when it ran."""

    campaign: str
    file: Path
    generated_at: datetime  # the wall clock when the run started
    settings: TuningSettings


def write_all(folder: Path, run: TuneRun, tuning: Tuning) -> dict[str, object]:
    """Write the four files into `folder` (made if needed); returns the report."""
    folder.mkdir(parents=True, exist_ok=True)
    report = report_of(run, tuning)
    (folder / REPORT).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")
    (folder / PATCH).write_text(patch_text(run, tuning), encoding="utf-8")
    labels = [f"{h:02d}" for h in range(24)]
    plot_rates(folder / HOUR_PLOT, labels, tuning.by_hour,
               title=f"{run.campaign}: answer rate by callee local hour", xlabel="local hour")
    plot_rates(folder / DAY_PLOT, [d.capitalize() for d in DAY_KEYS], tuning.by_weekday,
               title=f"{run.campaign}: answer rate by callee local weekday", xlabel="weekday")
    return report


def report_of(run: TuneRun, tuning: Tuning) -> dict[str, object]:
    """Every figure, as plain JSON data (the fields are listed in `dialer tune --help`)."""
    settings = run.settings
    return {
        "campaign": run.campaign, "file": str(run.file),
        "generated_at": run.generated_at.isoformat(),
        "data_from": _iso(tuning.first_at), "data_until": _iso(tuning.last_at),
        "settings": {"min_attempts": settings.min_attempts,
                     "max_optout_rate": settings.max_optout_rate,
                     "max_invalid_share": settings.max_invalid_share, "confidence": 0.95},
        "attempts": tuning.attempts,
        "attempts_without_verdict": tuning.attempts - tuning.overall.trials,
        "answer_rate": _rate(tuning.overall),
        "answer_rate_by_hour": [{"hour": h, **_rate(r)} for h, r in enumerate(tuning.by_hour)],
        "answer_rate_by_weekday": [{"weekday": DAY_KEYS[d], **_rate(r)}
                                   for d, r in enumerate(tuning.by_weekday)],
        "scripts": [{"script": s.script, "attempts": s.attempts, "answered": s.answered,
                     "opt_outs": s.opt_outs, "complaints": s.complaints,
                     "opt_out_rate": round(s.opt_out_rate, 5),
                     "complaint_rate": round(s.complaint_rate, 5), "flagged": s.flagged}
                    for s in tuning.scripts],
        "sources": [{"source": v.figures.source, "rows": v.figures.rows,
                     "invalid_at_intake": v.figures.invalid_at_intake,
                     "dead_numbers": v.figures.dead_numbers, "share": v.figures.share,
                     "flagged": v.flagged} for v in tuning.sources],
        "changes": [change_data(c) for c in tuning.changes],
        "notes": list(tuning.notes),
        "files": {"patch": PATCH, "plots": [HOUR_PLOT, DAY_PLOT]},
    }


def change_data(change: Change) -> dict[str, object]:
    value: object = (list(change.value) if isinstance(change.value, tuple)
                     else {key: list(ranges) for key, ranges in change.value.items()})
    return {"field": change.field, "op": change.op, "value": value, "why": change.why}


def patch_text(run: TuneRun, tuning: Tuning) -> str:
    """The reviewable patch: a YAML document with a comment saying how to apply it."""
    document = {
        "campaign": run.campaign, "file": str(run.file),
        "generated_at": run.generated_at.isoformat(), "data_until": _iso(tuning.last_at),
        "changes": [change_data(c) for c in tuning.changes],
    }
    header = (f"# Changes `dialer tune` proposes for campaign {run.campaign}.\n"
              f"# Review them; `dialer tune --campaign {run.campaign} --apply` writes them\n"
              "# into the campaign file (a .bak copy is kept) and records an audit entry.\n")
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return header + body


def plot_rates(path: Path, labels: Sequence[str], rates: Sequence[Rate], *, title: str,
               xlabel: str) -> None:
    """Bars of the answer rates with their 95 % intervals as error bars (PNG)."""
    with rc_context({"font.family": "sans-serif", "font.sans-serif": _sans_fonts()}), \
            warnings.catch_warnings():
        # Without a CJK font installed, a Chinese campaign name is drawn as boxes: the
        # plot is still right, so that one warning is not an error.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font",
                                category=UserWarning)
        figure = Figure(figsize=(max(6.0, len(labels) * 0.4), 4.0), layout="constrained")
        axes = figure.add_subplot()
        errors = [[r.rate - r.low if r.trials else 0.0 for r in rates],
                  [r.high - r.rate if r.trials else 0.0 for r in rates]]
        axes.bar(labels, [r.rate for r in rates], yerr=errors, capsize=3, color="#4c72b0",
                 ecolor="#333333")
        for index, rate in enumerate(rates):
            if rate.trials:
                axes.annotate(str(rate.trials), (index, 0), xytext=(0, 2), ha="center",
                              textcoords="offset points", fontsize=7, color="white")
        highs = [r.high for r in rates if r.trials]
        axes.set_ylim(0, min(1.0, max(highs, default=1.0) * 1.15))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("answer rate (error bars: Wilson 95% interval)")
        axes.set_xlabel(xlabel + " (numbers in bars: attempts)")
        axes.set_title(title)
        figure.savefig(path, format="png", dpi=100)


@functools.cache
def _sans_fonts() -> list[str]:
    """DejaVu Sans, then whichever CJK fonts are installed, for glyphs it lacks."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in _CJK_FONTS if name in installed)]


def _rate(rate: Rate) -> dict[str, object]:
    return {"answered": rate.successes, "attempts": rate.trials, "rate": round(rate.rate, 4),
            "low": round(rate.low, 4), "high": round(rate.high, 4)}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
