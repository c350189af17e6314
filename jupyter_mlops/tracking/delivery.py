"""What became of a session's records, in the user's words: stored, rejected by the store
(kept in the quarantine file), waiting for a store that does not answer, or still being sent.

One home for the lines the run card, `%mlops end` and `%mlops status` show, and for a logged
model's state, which the panel's run details say in the same words. "Unreachable" is
said only when the sender saw the store not answer; a store that answered with an error
rejected a record, and that record is named with the store's reason.
"""

from __future__ import annotations

import time

from jupyter_mlops.errors import counted
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking import quarantine
from jupyter_mlops.tracking.client import RunRef, Tracker
from jupyter_mlops.tracking.destination import masked
from jupyter_mlops.tracking.records import Model
from jupyter_mlops.tracking.spool import registered_key
from jupyter_mlops.tracking.writer import Writer


def flush_while_progressing(tracker: Tracker, step: float = 30.0,
                            patience: float = 300.0) -> bool:
    """Flush, waiting as long as the sender gets on (sends, or is still connecting, e.g. to
    a store that 8 kernels migrate at once) up to `patience`; a store that does not answer
    ends the wait at once. True when the store answered for every record."""
    deadline = time.monotonic() + patience
    writer = tracker.writer
    while True:
        before, started = writer.pending(), time.monotonic()
        wait = min(step, max(deadline - started, 1.0))
        if tracker.flush(timeout=wait):
            return True
        if time.monotonic() - started < wait or time.monotonic() >= deadline:
            return False  # the sender answered "not yet" (store down or busy), or died
        if writer.pending() >= before and writer.state != "starting":
            return False  # no progress in a whole step: say so rather than wait on


def run_problems(tracker: Tracker, run: RunRef) -> tuple[list[str], bool]:
    """The card's lines for `run` (its rejected records, or a store that does not answer),
    and whether they are final: the store answered for the run's every record."""
    writer = tracker.writer
    entries = tracker.rejections(run)
    lines = [quarantine.describe(e, with_run=False) for e in entries]
    if lines:
        lines.append(f"kept in {writer.spool.rejected_path}")
    settled = _settled(writer, run)
    if not settled and (writer.held or writer.lost):
        lines.append(held_line(writer))
    elif not settled and writer.store == "unreachable":
        lines.append(f"not stored yet: {_problem(tracker)}; the run's records wait in the spool")
    return lines, settled


def model_fate(tracker: Tracker, run: RunRef, register: str | None = None,
               name: str = vocab.MODEL_ARTIFACT) -> tuple[str, bool]:
    """What became of the run's model `name`, in a few words for the card ("" until the store
    answered for the run's records), and whether that is final. No mlflow here: the sender's
    ack says stored, the quarantine says rejected, the ids file has the registered version."""
    writer = tracker.writer
    if not _settled(writer, run):
        return "", False
    # Read after the ack: the sender quarantines a record before it acks it.
    rejected = [quarantine.record_of(e) for e in tracker.rejections(run)]
    if any(isinstance(r, Model) and r.name == name for r in rejected):
        return "NOT STORED: rejected", True
    if writer.spool.acked() < run.ended_at:
        return "", True  # the writer closed before the store had it: nothing to say here
    if not register:
        return model_state([]), True
    version = writer.run_id(registered_key(run.key, name))
    return model_state([f"{register}{f' v{version}' if version else ''}"]), True


def model_state(versions: list[str]) -> str:
    """A stored model's state as the card and the panel's run details both say it: the
    registered versions made from it ("registered Churn_Classifier v3"), else that it is
    stored and not registered."""
    return f"registered {', '.join(versions)}" if versions else "stored, not registered"


def _settled(writer: Writer, run: RunRef) -> bool:
    """The run has ended and the store answered for every record up to its end."""
    return run.status != "RUNNING" and run.ended_at > 0 and writer.settled(run.ended_at)


def outcome(tracker: Tracker, flushed: bool,
            rejected: list[quarantine.Entry]) -> tuple[str, bool]:
    """`%mlops end`'s account of the records after a flush, and whether all is well.
    `rejected` are the rejections not reported yet."""
    writer = tracker.writer
    if flushed:
        delivery = "the other records stored" if rejected else "all records stored"
    elif writer.held or writer.lost:
        delivery = held_line(writer)
    elif writer.store == "unreachable":
        delivery = (f"store unreachable ({_problem(tracker)}): "
                    f"{writer.pending()} bytes of records kept in the spool "
                    f"{writer.spool.log_path}; they are sent once it answers, or by "
                    "`jupyter-mlops sync`")
    else:
        store = "the store is busy; " if writer.store == "busy" else ""
        delivery = (f"{store}still sending: {writer.pending()} bytes not stored yet, the "
                    "sender goes on in the background (see `%mlops status`)")
    if not rejected:
        return delivery, flushed
    return rejected_report(writer, rejected, f"; {delivery}"), False


def rejected_report(writer: Writer, rejected: list[quarantine.Entry], then: str = "") -> str:
    """Rejected records, a line each; a run's records refused because its run was (their
    reason is the run's) in one line a run, after the run's own."""
    lines = [f"{counted(len(rejected), 'record')} REJECTED by the store, kept in "
             f"{writer.spool.rejected_path}{then}:"]
    following: dict[str, list[str]] = {}
    for entry in rejected:
        if quarantine.follows_its_run(entry):
            following.setdefault(str(entry.get("run") or entry.get("run_id") or "?"),
                                 []).append(str(entry.get("what")))
        else:
            lines.append(f"  {quarantine.describe(entry)}")
    lines += [f"  run {run!r}: {counted(len(what), 'more record')} not stored, as the run was "
              f"not created ({', '.join(what)})" for run, what in following.items()]
    return "\n".join(lines)


def _problem(tracker: Tracker) -> str:
    """The sender's one line on why the store takes no records (it names the store)."""
    return tracker.writer.problem or f"the store {masked(tracker.uri)} does not answer"


def held_line(writer: Writer) -> str:
    """Records the disk refused: where, why, and that the runs are not settled."""
    lost = f"; {writer.lost} dropped (beyond what memory holds)" if writer.lost else ""
    return (f"NOT STORED: {counted(writer.held, 'record')} could not be written to the spool "
            f"{writer.spool.log_path} ({writer.fault}){lost}; they are held in memory and "
            "written once the disk has room (the runs stay open until then)")


def unreported(tracker: Tracker) -> str | None:
    """The rejections not reported yet, as one message (marked reported), or None."""
    rejected = tracker.rejections()
    new, tracker.reported = rejected[tracker.reported:], len(rejected)
    if not new:
        return None
    return rejected_report(tracker.writer, new)


def status_lines(tracker: Tracker) -> list[str]:
    """`%mlops status`'s lines on the writer, the store and the rejected records."""
    writer = tracker.writer
    lines = [f"writer:     {writer.state}, store {writer.store}, {writer.pending()} bytes not "
             f"yet stored, spooled in {writer.spool.log_path}"]
    if writer.held or writer.lost:
        lines.append(f"  {held_line(writer)}")
    if writer.problem:
        lines.append(f"  {writer.problem}")
    lines += [f"  {e}" for e in writer.errors]
    rejected = tracker.rejections()
    if rejected:
        lines.append(f"rejected:   {counted(len(rejected), 'record')} the store refused, kept in "
                     f"{writer.spool.rejected_path}")
        lines += [f"  {quarantine.describe(e)}" for e in rejected]
    others = [p for p in quarantine.files(writer.spool.root) if p != writer.spool.rejected_path]
    if others:  # earlier kernels' rejections: still there until the user deletes them
        lines.append(f"also kept:  {counted(len(others), 'quarantine file')} of earlier "
                     f"sessions in {writer.spool.root} (`jupyter-mlops sync` lists them)")
    return lines
