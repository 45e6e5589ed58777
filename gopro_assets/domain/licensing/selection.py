"""R6: which licensable clips a batch takes under its minute cap."""

from collections.abc import Sequence


def select_batch(billable_seconds: Sequence[int], max_minutes: int | None) -> list[int]:
    """R6: indices of the clips taken, from candidates already in selection order
    (tier rank desc, uploaded_at asc, clip_id asc). A clip that would push the batch
    over ``max_minutes * 60`` seconds is skipped and the next one is tried."""
    if max_minutes is None:
        return list(range(len(billable_seconds)))
    room = max_minutes * 60
    chosen = []
    for i, seconds in enumerate(billable_seconds):
        if seconds <= room:
            chosen.append(i)
            room -= seconds
    return chosen
