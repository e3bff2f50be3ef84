"""AWS X-Ray tracing: one entity per request, long-poll attempt and store operation.

Tracing is on in Lambda (``LAMBDA_TASK_ROOT`` is set) and off elsewhere; ``PIX_TRACING``
(on/off) overrides both. When it is on, boto3's calls are traced too (the X-Ray SDK
patches botocore). In Lambda each request becomes a subsegment of the segment that Lambda
opens for the invocation; elsewhere each request begins its own segment, which the SDK
sends over UDP to the daemon at ``AWS_XRAY_DAEMON_ADDRESS`` (127.0.0.1:2000 by default).
Without a daemon those datagrams are dropped and nothing fails.

When tracing is off nothing is patched, the recorder is never called, and every span is
the same do-nothing object, so the cost is one attribute check per span.

Annotations carry only ids (ISPB, stream id) and metadata only counts: message contents,
names and CPF/CNPJ numbers never enter a trace.
"""

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from chalicelib.config import TRACING, parse_flag

LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
CONTEXT_MISSING = "AWS_XRAY_CONTEXT_MISSING"
METADATA_NAMESPACE = "pix-stream"
SERVICE_NAME = "pix-stream"


class Span:
    """A segment or subsegment being recorded; annotations and metadata go into the trace."""

    def __init__(self, entity: Any) -> None:
        self._entity = entity

    def annotate(self, key: str, value: str | int | None) -> None:
        """Add an indexed annotation (searchable in X-Ray); None values are skipped."""
        if self._entity is not None and value is not None:
            self._entity.put_annotation(key, value)

    def metadata(self, key: str, value: Any) -> None:
        """Add unindexed metadata; meant for counts and capacity figures."""
        if self._entity is not None and value is not None:
            self._entity.put_metadata(key, value, METADATA_NAMESPACE)


NO_SPAN = Span(None)
_NO_TRACE: AbstractContextManager[Span] = nullcontext(NO_SPAN)


class Tracer:
    """Open spans on an X-Ray recorder, or do nothing when `recorder` is None.

    With `own_segments`, as on a local server, each request begins and ends its own segment.
    Without it, as in Lambda, a request is a subsegment of the segment that is already open.
    """

    def __init__(self, recorder: Any = None, own_segments: bool = False) -> None:
        self._recorder = recorder
        self._own_segments = own_segments

    @property
    def enabled(self) -> bool:
        return self._recorder is not None

    def request(self, name: str) -> AbstractContextManager[Span]:
        """Trace one request or scheduled run."""
        if self._recorder is None:
            return _NO_TRACE
        if self._own_segments:
            return self._segment(name)
        return self._subsegment(name)

    def subsegment(self, name: str) -> AbstractContextManager[Span]:
        """Trace one step of the current request."""
        if self._recorder is None:
            return _NO_TRACE
        return self._subsegment(name)

    @contextmanager
    def _segment(self, name: str) -> Iterator[Span]:
        segment = self._recorder.begin_segment(name)
        try:
            yield Span(segment)
        except Exception as exc:
            segment.add_exception(exc, [])
            raise
        finally:
            self._recorder.end_segment()

    @contextmanager
    def _subsegment(self, name: str) -> Iterator[Span]:
        # The SDK's context manager records an exception that leaves the block, then
        # re-raises it. It yields None when no segment is open.
        with self._recorder.in_subsegment(name) as subsegment:
            yield Span(subsegment)


_tracer = Tracer()


def in_lambda(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether this process is a Lambda function (the runtime sets LAMBDA_TASK_ROOT)."""
    return bool((os.environ if environ is None else environ).get(LAMBDA_TASK_ROOT))


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Return whether to trace: PIX_TRACING if set, otherwise only in Lambda."""
    raw = environ.get(TRACING, "")
    if raw:
        return parse_flag(TRACING, raw)
    return in_lambda(environ)


def configure(
    environ: MutableMapping[str, str] | None = None,
    patch: Callable[[tuple[str, ...]], None] | None = None,
) -> Tracer:
    """Set up tracing for this process once, at import time of the app, and return it.

    `patch` replaces the SDK's module patcher in tests.
    """
    global _tracer  # noqa: PLW0603 - one tracer per process, like the SDK's recorder
    env = os.environ if environ is None else environ
    if not tracing_wanted(env):
        # The SDK may still be imported (by a dependency or a test); it must stay quiet.
        env.setdefault(CONTEXT_MISSING, "IGNORE_ERROR")
        _tracer = Tracer()
        return _tracer
    from aws_xray_sdk.core import patch as sdk_patch  # noqa: PLC0415 - only when tracing
    from aws_xray_sdk.core import xray_recorder  # noqa: PLC0415

    lambda_process = in_lambda(env)
    if not lambda_process:
        env.setdefault(CONTEXT_MISSING, "IGNORE_ERROR")
        xray_recorder.configure(
            service=SERVICE_NAME, context_missing="IGNORE_ERROR", sampling=False
        )
    (patch or sdk_patch)(("botocore",))
    _tracer = Tracer(xray_recorder, own_segments=not lambda_process)
    return _tracer


def use(tracer: Tracer) -> Tracer:
    """Replace this process's tracer; return the one it replaces (tests)."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


def request(name: str) -> AbstractContextManager[Span]:
    return _tracer.request(name)


def subsegment(name: str) -> AbstractContextManager[Span]:
    return _tracer.subsegment(name)
