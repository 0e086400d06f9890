"""What compliance's task calls and the recovery does, bound by `RecoveryConfig.ready`.

SPEC §7 names `compliance.tasks.sweep_windows`; the follow-ups and expiry it runs change
conversations, which is the recovery lifecycle's. Compliance imports no other app: the task
calls this handler.
"""

from __future__ import annotations

from core.handlers import Handler

# () -> counts of what the sweep did.
windows_sweep: Handler[[], dict[str, int]] = Handler(
    "compliance.windows_sweep", bound_by="recovery (RecoveryConfig.ready)"
)
