"""The exporter's figures as a pure fold of the log, one event at a time: the tests' oracle.

The exporter serves its figures by SQL over its own projection (``ffrtmp.exporter.projection``);
``tests/integration/test_exporter_projection.py`` holds that reading against this fold.

``Tally`` folds decoded events (job events through ``events.job.evolve``, agent events through
``events.agent.evolve_agent``) into the counts, gauges and histograms of ``LogFigures``. It is
pure: no clock, no I/O; the time of everything is the events' own ``at``. It holds the state of
live jobs only (a finished job leaves, its counts stay), so a long history does not sit in
memory; a failed or canceled job keeps its state, since an operator's retry may queue it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from events.agent import AgentState, evolve_agent, initial_agent
from events.agent_events import AgentEvent
from events.base import AgentEventBase, JobEventBase, SetAside, Unknown
from events.codec import Decoded
from events.enums import TERMINAL_STATUSES, AgentStatus, JobStatus
from events.job import RERUNNABLE, JobState, evolve, initial
from events.job_events import JobAssigned, JobCompleted, JobEvent, JobStarted
from events.scenarios import SCENARIOS
from ffrtmp.exporter.figures import (
    DURATION_BUCKETS_S,
    START_BUCKETS_S,
    WAIT_BUCKETS_S,
    Histogram,
    LogFigures,
    Mean,
    ResultGroup,
    by_queue,
)

S = JobStatus


class _Buckets:
    """A histogram being filled: counts per bucket and the sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.sum += value

    def figures(self) -> Histogram:
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return Histogram(buckets=tuple(buckets), sum=self.sum)


class _Means:
    """Sums and counts of one scenario and encoder's results."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: Counter[str] = Counter()

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] += 1

    def mean(self, name: str) -> Mean:
        return Mean(sum=self.sums.get(name, 0.0), count=self.counts[name])


class Tally:
    """The log's figures, folded event by event; ``figures()`` reads them at any point."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.position = 0
        self.unknown = 0
        self.set_aside = 0  # stored messages no reader applies (events.admit)
        self._jobs: dict[str, JobState] = {}
        self._finished: set[str] = set()
        self._agents: dict[str, AgentState] = {}
        self._entered: Counter[str] = Counter()
        self._by_state: Counter[str] = Counter()
        self._queued: Counter[tuple[str, str]] = Counter()  # (queue, priority)
        self._failed: Counter[str] = Counter()
        self._assignments = 0
        self._rejections = 0
        self._duration: dict[str, _Buckets] = {}  # by queue
        self._wait: dict[str, _Buckets] = {}
        self._start = _Buckets(START_BUCKETS_S)
        self._results: dict[tuple[str, str], _Means] = {}

    def apply(self, seq: int, event: Decoded) -> None:
        """Fold one event of the log at stream sequence ``seq``."""
        self.position = max(self.position, seq)
        if isinstance(event, Unknown):
            self.unknown += 1
        elif isinstance(event, SetAside):
            self.set_aside += 1
        elif isinstance(event, JobEventBase):
            self._job(event)
        elif isinstance(event, AgentEventBase):
            self._agent(event)

    def _agent(self, event: AgentEvent) -> None:
        before = self._agents.get(event.agent) or initial_agent(event.agent)
        self._agents[event.agent] = evolve_agent(before, event)

    def _job(self, event: JobEvent) -> None:
        if event.job in self._finished:
            return
        before = self._jobs.get(event.job) or initial(event.job)
        after = evolve(before, event)
        self._observe(before, after, event)
        if after.status is not before.status:
            self._moved(before, after)
        if after.status in TERMINAL_STATUSES and after.status not in RERUNNABLE:
            self._jobs.pop(event.job, None)
            self._finished.add(event.job)
        elif after.status is not S.NEW:
            self._jobs[event.job] = after

    def _moved(self, before: JobState, after: JobState) -> None:
        self._entered[after.status] += 1
        self._by_state[after.status] += 1
        if before.status is not S.NEW:
            self._by_state[before.status] -= 1
        if before.status is S.QUEUED:
            self._queued[_queue_key(before)] -= 1
        if after.status is S.QUEUED:
            self._queued[_queue_key(after)] += 1
        match after.status:
            case S.ASSIGNED:
                self._assignments += 1
            case S.REJECTED:
                self._rejections += 1
            case S.FAILED:
                self._failed[after.reason or "unknown"] += 1
            case _:
                pass

    def _observe(self, before: JobState, after: JobState, event: JobEvent) -> None:
        """Histogram and result observations an event makes."""
        if isinstance(event, JobAssigned) and after.status is S.ASSIGNED and before.attempt == 0:
            queue = _queue_key(before)[0]
            waits = self._wait.setdefault(queue, _Buckets(WAIT_BUCKETS_S))
            waits.observe(max(0.0, event.at - before.queued_at))
        elif isinstance(event, JobStarted) and after.status is S.RUNNING:
            self._start.observe(max(0.0, event.at - before.assigned_at))
        elif isinstance(event, JobCompleted) and after.status is S.COMPLETED:
            queue = _queue_key(before)[0]
            runs = self._duration.setdefault(queue, _Buckets(DURATION_BUCKETS_S))
            runs.observe(max(0.0, event.at - before.started_at))
            self._result(after, event)

    def _result(self, state: JobState, event: JobCompleted) -> None:
        name = state.spec.scenario if state.spec else "?"
        found = SCENARIOS.get(name)
        key = (name, found.encoder if found else "?")
        means = self._results.setdefault(key, _Means())
        results = event.results
        means.add("encode_fps", results.encode_fps)
        means.add("energy_j", results.energy_j)
        means.add("vmaf", results.vmaf)
        means.add("psnr", results.psnr)
        means.add("ssim", results.ssim)
        if results.vmaf is not None and results.energy_j and results.wall_s > 0:
            means.add("vmaf_per_watt", results.vmaf / (results.energy_j / results.wall_s))

    def figures(self) -> LogFigures:
        """The figures as of the last event applied."""
        queued_by_queue: Counter[str] = Counter()
        queued_by_priority: Counter[str] = Counter()
        for (queue, priority), count in self._queued.items():
            queued_by_queue[queue] += count
            queued_by_priority[priority] += count
        nodes = Counter(str(agent.status) for agent in self._agents.values())
        return LogFigures(
            position=self.position,
            entered={str(k): v for k, v in self._entered.items()},
            by_state={str(k): v for k, v in self._by_state.items() if v},
            queued_by_priority=dict(+queued_by_priority),
            queued_by_queue=dict(+queued_by_queue),
            assignments=self._assignments,
            rejections=self._rejections,
            failed_by_reason=dict(self._failed),
            retries=self._entered[S.RETRYING],
            duration=by_queue(
                {q: b.figures() for q, b in self._duration.items()}, DURATION_BUCKETS_S
            ),
            wait=by_queue({q: b.figures() for q, b in self._wait.items()}, WAIT_BUCKETS_S),
            schedule_to_start=self._start.figures(),
            nodes_by_status=dict(nodes),
            nodes_quarantined=sum(agent.quarantined for agent in self._agents.values()),
            departed=frozenset(
                name for name, agent in self._agents.items() if agent.status is AgentStatus.OFFLINE
            ),
            present=frozenset(
                name
                for name, agent in self._agents.items()
                if agent.status is not AgentStatus.OFFLINE
            ),
            drained=frozenset(name for name, agent in self._agents.items() if agent.draining),
            results=tuple(self._groups()),
        )

    def _groups(self) -> list[ResultGroup]:
        return [
            ResultGroup(
                scenario=scenario,
                encoder=encoder,
                encode_fps=means.mean("encode_fps"),
                energy_j=means.mean("energy_j"),
                vmaf=means.mean("vmaf"),
                psnr=means.mean("psnr"),
                ssim=means.mean("ssim"),
                vmaf_per_watt=means.mean("vmaf_per_watt"),
            )
            for (scenario, encoder), means in sorted(self._results.items())
        ]


def _queue_key(state: JobState) -> tuple[str, str]:
    spec = state.spec
    return (str(spec.queue), str(spec.priority)) if spec else ("?", "?")
