"""Running one project of one job.

- `project` — the state machine (storyboard → keyframes → clips → stitch), resumable.
- `clips` — clip operations: submit, poll, resubmit, record.
- `calls` — the one place a provider call is counted, recorded in the cache and priced.
- `cache` — generation keys and cache records.
- `runtime` — what every project of a batch shares; a run's outcome.
- `states` — project, scene, clip and job states as ``StrEnum``s.
"""
