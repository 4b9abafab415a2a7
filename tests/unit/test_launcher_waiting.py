"""The wait loop, on scripted statuses and a fake clock (no AWS, no sleeping)."""

import pytest

from launcher.settings import LauncherError
from launcher.waiting import Status, WaitTimeout, wait_for


class Script:
    """Statuses to hand out one poll at a time; the last one repeats."""

    def __init__(self, *statuses: Status):
        self.statuses = list(statuses)
        self.polls = 0

    def __call__(self) -> Status:
        self.polls += 1
        return self.statuses[min(self.polls, len(self.statuses)) - 1]


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(script, clock, **kwargs):
    printed: list[str] = []
    final = wait_for(
        "training job j",
        script,
        ("Completed", "Failed", "Stopped"),
        sleep=clock.sleep,
        clock=clock,
        echo=printed.append,
        **kwargs,
    )
    return final, printed


def test_polls_until_done_and_prints_each_change_once():
    script = Script(
        Status("InProgress", "Starting"),
        Status("InProgress", "Starting"),
        Status("InProgress", "Training"),
        Status("Completed", "Completed"),
    )
    clock = Clock()
    final, printed = run(script, clock, poll_seconds=10)
    assert final == Status("Completed", "Completed")
    assert printed == [
        "training job j: InProgress - Starting",
        "training job j: InProgress - Training",
        "training job j: Completed - Completed",
    ]
    assert clock.sleeps == [10, 10, 10]


def test_a_failed_state_is_returned_for_the_caller_to_judge():
    final, _ = run(Script(Status("Failed", "bad data")), Clock(), poll_seconds=1)
    assert final == Status("Failed", "bad data")


def test_times_out_with_the_last_status_and_never_oversleeps():
    clock = Clock()
    with pytest.raises(WaitTimeout, match="still InProgress after 25 s; it keeps running"):
        run(Script(Status("InProgress", "Training")), clock, poll_seconds=10, timeout_seconds=25)
    assert clock.sleeps == [10, 10, 5]


def test_a_finished_job_is_reported_even_with_no_time_left():
    final, _ = run(Script(Status("Stopped")), Clock(), poll_seconds=10, timeout_seconds=0)
    assert final.state == "Stopped"


def test_on_tick_runs_after_every_poll():
    ticks = []
    script = Script(Status("InProgress"), Status("Completed"))
    run(script, Clock(), poll_seconds=1, on_tick=lambda: ticks.append(script.polls))
    assert ticks == [1, 2]


def test_poll_interval_must_be_positive():
    with pytest.raises(LauncherError, match="poll interval"):
        run(Script(Status("Completed")), Clock(), poll_seconds=0)
