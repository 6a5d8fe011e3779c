"""``Client`` and ``Study``: the blocking SDK. ``_async.py`` mirrors it line for line with ``await``.

Only the I/O lives here (sending with retries, sleeping, reading the stream); what to send and how to read
the answer is in :mod:`optforge.client._protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from types import TracebackType

import httpx

from optforge.catalog import Family, Schedule
from optforge.client import _protocol as proto
from optforge.client._models import Best, StudyEventPublic
from optforge.client._progress import ProgressKind, make_progress
from optforge.client._retry import RetryPolicy
from optforge.client._sse import SSEDecoder
from optforge.client._study import DEFAULT_POLL_INTERVAL, StudyView, WaitClock, final_check
from optforge.learned_opt.meta.public import MetaRunPublic, MetaRunsPublic
from optforge.spec import MetricPoint, StudyStatus, TrialStatus
from optforge.spec._api import (
    BestsPublic,
    FamiliesPublic,
    HealthPublic,
    MetricPointsPublic,
    RecommendationPublic,
    RecommendationsPublic,
    SchedulesPublic,
    StudiesPublic,
    StudyPublic,
    TrialPublic,
    TrialsPublic,
)


class StudyList(list["Study"]):
    """A page of studies; ``count`` is how many match the filter over all pages."""

    count: int = 0


class Client:
    """A blocking client of the optforge service.

    ``url`` defaults to ``$OPTFORGE_URL`` or http://127.0.0.1:8000, ``token`` to ``$OPTFORGE_TOKEN``.
    ``transport`` swaps httpx's network transport (e.g. ``httpx.MockTransport`` or a WSGI/ASGI bridge);
    ``http_client`` hands in a whole ``httpx.Client`` (proxies, certificates, or Starlette's ``TestClient``
    for an in-process app), which the caller then closes. ``retry`` bounds the retries (``RetryPolicy``).
    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = proto.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if transport is not None and http_client is not None:
            raise ValueError("give transport or http_client, not both (set the transport on your http_client)")
        self.url = proto.resolve_url(url)
        self.token = proto.resolve_token(token)
        self.timeout = httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self.timeout)
        self._headers = {"User-Agent": proto.user_agent(), **(headers or {})}

    # --- plumbing ------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.url}{' with token' if self.token else ''}>"

    def send(self, call: proto.Call, *, stream: bool = False, timeout: httpx.Timeout | None = None) -> httpx.Response:
        """Send ``call``, retrying as ``self.retry`` allows; the final response (any status) or ConnectionFailed."""
        attempt = 0
        while True:
            request = proto.build_request(self._http, self.url, call, self.token, timeout or self.timeout)
            request.headers.update(self._headers)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retry.after_error(exc, attempt, idempotent=call.idempotent)
                if delay is None:
                    raise proto.connection_failed(self.url, exc, attempt + 1, call) from exc
            else:
                delay = proto.retry_delay(self.retry, call, response, attempt)
                if delay is None:
                    return response
                response.close()
            time.sleep(delay)
            attempt += 1

    def _get(self, call: proto.Call, model: type[proto.M]) -> proto.M:
        return proto.decode(call, self.send(call), model)

    # --- studies -------------------------------------------------------------------------------------------

    def submit(self, spec: proto.SpecLike) -> Study:
        """Queue a study. ``spec``: a StudySpec, a dict, a YAML/JSON file path or YAML/JSON text.

        The spec is validated here first (ValidationFailed, status_code None), then by the service
        (ValidationFailed 422 for its limits, Forbidden 403 for user code it does not run).
        """
        data = self._get(proto.submit_call(proto.coerce_spec(spec)), StudyPublic)
        return Study(self, data)

    def study(self, study_id: int) -> Study:
        """The study with this id (NotFound if there is none, or it is not yours)."""
        return Study(self, self._get(proto.study_call(study_id), StudyPublic))

    def studies(self, *, status: StudyStatus | str | None = None, limit: int = 50, offset: int = 0) -> StudyList:
        """Your studies (an admin: everyone's), newest first; ``.count`` is the total over all pages."""
        page = self._get(proto.list_studies_call(status, limit, offset), StudiesPublic)
        out = StudyList(Study(self, s) for s in page.data)
        out.count = page.count
        return out

    def cancel(self, study_id: int) -> Study:
        """Cancel a study (a queued one at once, a running one within seconds); a finished one is unchanged."""
        return Study(self, self._get(proto.cancel_call(study_id), StudyPublic))

    def delete(self, study_id: int) -> None:
        """Delete a study with everything it stored (a running one is stopped first)."""
        call = proto.delete_call(study_id)
        proto.check(call, self.send(call))

    def trials(
        self, study_id: int, *, status: TrialStatus | str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[TrialPublic]:
        return self._get(proto.trials_call(study_id, status, limit, offset), TrialsPublic).data

    def metrics(self, study_id: int, trial_id: int, *, after_step: int | None = None) -> list[MetricPoint]:
        """One trial's learning curve, in step order."""
        return self._get(proto.metrics_call(study_id, trial_id, after_step), MetricPointsPublic).data

    def best(self, study_id: int) -> Best:
        """The study's best configuration (NotReady until the study has finished with a completed trial)."""
        return self._get(proto.best_call(study_id), Best)

    def bests(self, study_id: int) -> list[Best]:
        """All ranked best configurations of the study, best first."""
        page = self._get(proto.bests_call(study_id), BestsPublic)
        return [Best.model_validate(b.model_dump()) for b in page.data]

    def events(self, study_id: int, *, after: int | None = None) -> Iterator[StudyEventPublic]:
        """The study's events from the start (or after event id ``after``), live, until it finishes.

        Reconnects after a dropped connection and resumes after the last event received (``Last-Event-ID``).
        """
        state = proto.EventStreamState(study_id, after=after, policy=self.retry, base_url=self.url)
        while not state.done:
            call = state.call()
            received = 0
            dropped: httpx.TransportError | None = None
            response = self.send(call, stream=True, timeout=proto.stream_timeout(self.timeout))
            try:
                if not response.is_success:
                    response.read()
                    proto.check(call, response)
                decoder = SSEDecoder()
                for line in response.iter_lines():
                    message = decoder.feed(line)
                    if message is not None:
                        received += 1
                        yield state.on_message(message)
                        if state.done:
                            return
            except httpx.TransportError as exc:  # dropped mid-stream: resume after the last event
                dropped = exc
            finally:
                response.close()
            if dropped is not None:
                time.sleep(state.reconnect_delay(dropped))
                continue
            # The stream ended without "finished": the study ended before (or without) one, or a proxy cut it.
            if received == 0 and self.study(study_id).finished:
                return
            if received == 0:
                time.sleep(state.reconnect_delay(None))

    # --- meta-training runs (the learned optimizer) ---------------------------------------------------------

    def submit_meta_run(self, spec: proto.MetaSpecLike) -> MetaRunPublic:
        """Queue a meta-training run of the learned optimizer. ``spec``: a MetaTrainSpec, a dict, a YAML/JSON
        file path or text (validated here first, then against the service's limits: ValidationFailed)."""
        return self._get(proto.submit_meta_run_call(proto.coerce_meta_spec(spec)), MetaRunPublic)

    def meta_runs(self, *, name: str | None = None, limit: int = 50, offset: int = 0) -> list[MetaRunPublic]:
        """Meta-training runs (of the learned optimizer ``name``, if given), newest first."""
        return self._get(proto.meta_runs_call(name, limit, offset), MetaRunsPublic).data

    def meta_run(self, run_id: int) -> MetaRunPublic:
        """One meta-training run: status, outer steps done, last meta-loss, checkpoints."""
        return self._get(proto.meta_run_call(run_id), MetaRunPublic)

    def cancel_meta_run(self, run_id: int) -> MetaRunPublic:
        """Cancel a meta-training run (its checkpoints stay); a finished one is unchanged."""
        return self._get(proto.cancel_meta_run_call(run_id), MetaRunPublic)

    # --- results and registry ------------------------------------------------------------------------------

    def recommend(self, task: proto.TaskLike, *, limit: int = 5) -> list[RecommendationPublic]:
        """Stored configurations for the tasks closest to ``task`` (a TaskSpec, dict, or file), nearest first."""
        call = proto.recommend_call(proto.coerce_task(task), limit)
        return self._get(call, RecommendationsPublic).data

    def families(self) -> list[Family]:
        """Every optimizer family the service can search, with hyperparameters, defaults and ranges."""
        call = proto.families_call()
        return proto.decode(call, self.send(call), FamiliesPublic).data

    def schedules(self) -> list[Schedule]:
        call = proto.schedules_call()
        return proto.decode(call, self.send(call), SchedulesPublic).data

    def health(self) -> HealthPublic:
        """Liveness (``/healthz``): the service answers; also says its version and auth mode."""
        return self._get(proto.health_call(), HealthPublic)

    def ready(self) -> HealthPublic:
        """Readiness (``/readyz``): ``status`` is "ok" when its database and Ray answer, and ``checks`` says which."""
        return self._get(proto.ready_call(), HealthPublic)


class Study(StudyView):
    """A submitted study. Attributes reflect the last read (``refresh()`` reads again)."""

    def __init__(self, client: Client, data: StudyPublic) -> None:
        self.client = client
        self.data = data

    def refresh(self) -> Study:
        self.data = self.client._get(proto.study_call(self.id), StudyPublic)
        return self

    def wait(
        self,
        *,
        progress: bool | ProgressKind = True,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        raise_on_failure: bool = True,
    ) -> Study:
        """Block until the study finishes, showing trials done, the best so far and its family.

        Polls the study every ``poll_interval`` seconds (one cheap read; it works through any proxy). Raises
        WaitTimeout after ``timeout`` seconds (the study keeps running) and StudyFailed if it failed
        (unless ``raise_on_failure=False``). A cancelled study returns normally. Returns ``self``.
        """
        clock = WaitClock(timeout, poll_interval)
        display = make_progress(progress)
        try:
            while True:
                display.update(self.data)
                if self.finished:
                    break
                time.sleep(clock.next_sleep(self))
                self.refresh()
        finally:
            display.close()
        final_check(self, raise_on_failure)
        return self

    def events(self, *, after: int | None = None) -> Iterator[StudyEventPublic]:
        """The live event stream (see ``Client.events``)."""
        return self.client.events(self.id, after=after)

    def trials(self, *, status: TrialStatus | str | None = None) -> list[TrialPublic]:
        return self.client.trials(self.id, status=status)

    def metrics(self, trial_id: int, *, after_step: int | None = None) -> list[MetricPoint]:
        return self.client.metrics(self.id, trial_id, after_step=after_step)

    def best(self) -> Best:
        return self.client.best(self.id)

    def cancel(self) -> Study:
        self.data = self.client.cancel(self.id).data
        return self

    def delete(self) -> None:
        self.client.delete(self.id)
