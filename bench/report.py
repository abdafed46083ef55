"""One measured line of the report: keybin against its floor, with the target it is held to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    case: str
    metric: str
    unit: str
    keybin: float | None
    floor: float | None = None
    floor_name: str = ""
    # "at_most" (keybin/floor <= bound), "at_least" (keybin/floor >= bound),
    # "below" (keybin <= bound, absolute), or "" (reported, no target).
    target_kind: str = ""
    bound: float | None = None
    note: str = ""
    ratio: float | None = field(init=False, default=None)
    met: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.keybin is not None and self.floor:
            self.ratio = self.keybin / self.floor
        if self.bound is None or self.keybin is None:
            return
        if self.target_kind == "at_most" and self.ratio is not None:
            self.met = self.ratio <= self.bound
        elif self.target_kind == "at_least" and self.ratio is not None:
            self.met = self.ratio >= self.bound
        elif self.target_kind == "below":
            self.met = self.keybin <= self.bound

    @property
    def target(self) -> str:
        if self.target_kind == "at_most":
            return f"<= {self.bound:g}x"
        if self.target_kind == "at_least":
            return f">= {self.bound:g}x"
        if self.target_kind == "below":
            return f"<= {self.bound:g} {self.unit}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target
        return data


def unavailable(case: str, metric: str, reason: str) -> Row:
    """A number that could not be measured here: said so, never made up."""
    return Row(case, metric, "", None, note=f"unavailable: {reason}")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    header = ["case", "metric", "keybin", "floor", "ratio", "target", "met?"]
    lines = [header]
    for row in rows:
        unit = f" {row.unit}" if row.unit else ""
        keybin = _number(row.keybin) + unit if row.keybin is not None else row.note or "-"
        floor = _number(row.floor) + (f" ({row.floor_name})" if row.floor_name else "")
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        lines.append([row.case, row.metric, keybin, floor, ratio, row.target, met])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
