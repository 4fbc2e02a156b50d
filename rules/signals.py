"""What the network and the voice pipeline tell us about a call: shared vocabulary."""

from __future__ import annotations

import enum


class Announcement(enum.StrEnum):
    """What a carrier's early-media tone or recording said about the number."""

    VACANT = "vacant"  # 您拨打的号码是空号 / SIT intercept
    SUSPENDED = "suspended"  # 您拨打的号码已停机
    POWERED_OFF = "powered_off"  # 您拨打的电话已关机
    UNREACHABLE = "unreachable"  # 您拨打的电话暂时无法接通 / 不在服务区
    BUSY = "busy"  # 您拨打的电话正在通话中 / busy tone
    UNKNOWN = "unknown"  # an announcement we could not classify: never a guess


class AnswerKind(enum.StrEnum):
    """Who or what picked up, as answering-machine detection decided."""

    HUMAN = "human"
    MACHINE = "machine"
    UNSURE = "unsure"
