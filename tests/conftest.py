"""Run trial TestCases before plain pytest functions.

pytest-twisted runs each plain test function inside a reactor it starts in
a greenlet and keeps running; a trial TestCase that comes after that cannot
spin the reactor itself any more.  Trial's own runs start and stop the
reactor cleanly, so putting them first lets both kinds share one session.
"""

import pytest
from twisted.trial.unittest import SynchronousTestCase


def _is_trial(item) -> bool:
    cls = getattr(item, "cls", None)
    return cls is not None and issubclass(cls, SynchronousTestCase)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if _is_trial(item) else 1)


@pytest.fixture(scope="session", autouse=True)
def _stop_reactor_threads():
    """Stop the reactor's thread pool after the last test.

    Trial's runs use it (scrypt runs in a thread), and nothing else stops it
    when pytest never ran the reactor itself: pytest would then wait for its
    worker threads forever at exit.
    """
    yield
    from twisted.internet import reactor

    if getattr(reactor, "threadpool", None) is not None:
        reactor._stopThreadPool()


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    """A running chatd for a test module of the client tests; its port.

    Each test uses its own usernames, so one server serves the module.
    """
    from tests.helpers_client import Server, free_port

    port = free_port()
    server = Server(tmp_path_factory.mktemp("chatd"),
                    [f"tcp:{port}:interface=127.0.0.1"]).start(port)
    yield port
    server.stop()
