"""Compile a job into one immutable plan that every command and the database read.

- :mod:`vidpipe.plan.model` — the frozen plan: settings, prompts, generation graph, digest;
- :mod:`vidpipe.plan.compile` — job files → plans, raising every problem at once;
- :mod:`vidpipe.plan.checks` — the checks made at compile time;
- :mod:`vidpipe.plan.requests` — the provider requests (shared with the engine, so plan
  keys are run keys);
- :mod:`vidpipe.plan.assess` — a plan against the cache: reuse / new / in flight, why, cost.
"""

from vidpipe.plan.assess import Assessment, Status, Step, assess, up_to_date
from vidpipe.plan.compile import Compiled, compile_batch, compile_jobs, providers_for
from vidpipe.plan.model import AFTER_STORYBOARD, Frame, Node, Plan

__all__ = [
    "AFTER_STORYBOARD",
    "Assessment",
    "Compiled",
    "Frame",
    "Node",
    "Plan",
    "Status",
    "Step",
    "assess",
    "compile_batch",
    "compile_jobs",
    "providers_for",
    "up_to_date",
]
