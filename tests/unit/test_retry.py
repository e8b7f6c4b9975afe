import pytest

from shared.retry import backoff_delays, retry_call


def test_backoff_grows_exponentially_and_is_capped():
    delays = list(backoff_delays(6, base=1, cap=5, jitter=0))
    assert delays == [1, 2, 4, 5, 5]


def test_retry_call_retries_then_succeeds_and_reports_each_retry():
    calls, retries, slept = [], [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "ok"

    result = retry_call(flaky, attempts=5, base=0.1, sleep=slept.append,
                        on_retry=lambda n, exc, d: retries.append((n, str(exc))))
    assert result == "ok"
    assert len(calls) == 3
    assert retries == [(1, "refused"), (2, "refused")]
    assert len(slept) == 2


def test_retry_call_gives_up_after_the_last_attempt_with_the_last_error():
    with pytest.raises(ConnectionError, match="3"):
        n = iter(range(1, 10))
        retry_call(lambda: (_ for _ in ()).throw(ConnectionError(str(next(n)))),
                   attempts=3, base=0, sleep=lambda d: None)


def test_errors_not_listed_are_not_retried():
    calls = []

    def bad():
        calls.append(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        retry_call(bad, attempts=5, retry_on=(ConnectionError,), sleep=lambda d: None)
    assert len(calls) == 1
