"""R6: which licensable clips a batch takes under its minute cap."""

from collections.abc import Hashable, Sequence


def select_batch(
    billable_seconds: Sequence[int], max_minutes: int | None, units: Sequence[Hashable] | None = None
) -> list[int]:
    """R6: indices of the clips taken, from candidates already in selection order
    (tier rank desc, uploaded_at asc, clip_id asc). A clip that would push the batch
    over ``max_minutes * 60`` seconds is skipped and the next one is tried.

    ``units`` (v2, ``whole_recordings``, R6/R15): the unit each candidate belongs to (its
    recording), consecutive candidates of one unit being taken or skipped together: a
    recording whose summed seconds would exceed the room left is skipped whole, and the
    next recording is tried. Without ``units`` every clip is its own unit."""
    n = len(billable_seconds)
    if units is None:
        groups = [[i] for i in range(n)]
    else:
        if len(units) != n:
            raise ValueError(f"{len(units)} units for {n} candidates")
        groups = []
        for i, unit in enumerate(units):
            if groups and units[groups[-1][0]] == unit:
                groups[-1].append(i)
            else:
                groups.append([i])
        if len({units[g[0]] for g in groups}) != len(groups):
            raise ValueError("the candidates of a unit must be consecutive (licensable_clips.sql orders them so)")
    if max_minutes is None:
        return list(range(n))
    room = max_minutes * 60
    chosen = []
    for group in groups:
        seconds = sum(billable_seconds[i] for i in group)
        if seconds <= room:
            chosen.extend(group)
            room -= seconds
    return chosen
