"""Run trial TestCases before plain pytest functions.

pytest-twisted runs each plain test function inside a reactor it starts in
a greenlet and keeps running; a trial TestCase that comes after that cannot
spin the reactor itself any more.  Trial's own runs start and stop the
reactor cleanly, so putting them first lets both kinds share one session.
"""

from twisted.trial.unittest import SynchronousTestCase


def _is_trial(item) -> bool:
    cls = getattr(item, "cls", None)
    return cls is not None and issubclass(cls, SynchronousTestCase)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if _is_trial(item) else 1)
