"""``AsyncClient`` and ``AsyncStudy``: ``_sync.py`` line for line, with ``await`` (asyncio or trio).

Only the I/O lives here; what to send and how to read the answer is in :mod:`optforge.client._protocol`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import anyio
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


class AsyncStudyList(list["AsyncStudy"]):
    """A page of studies; ``count`` is how many match the filter over all pages."""

    count: int = 0


class AsyncClient:
    """An async client of the optforge service (the same surface as ``Client``, awaited).

    ``url`` defaults to ``$OPTFORGE_URL`` or http://127.0.0.1:8000, ``token`` to ``$OPTFORGE_TOKEN``.
    ``transport`` swaps httpx's network transport (e.g. ``httpx.ASGITransport(app)`` for an in-process app);
    ``http_client`` hands in a whole ``httpx.AsyncClient`` (proxies, certificates), which the caller
    closes. ``retry`` bounds the retries (``RetryPolicy``). Use it as an async context manager, or
    ``await aclose()``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = proto.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if transport is not None and http_client is not None:
            raise ValueError("give transport or http_client, not both (set the transport on your http_client)")
        self.url = proto.resolve_url(url)
        self.token = proto.resolve_token(token)
        self.timeout = httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self.timeout)
        self._headers = {"User-Agent": proto.user_agent(), **(headers or {})}

    # --- plumbing ------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient {self.url}{' with token' if self.token else ''}>"

    async def send(
        self, call: proto.Call, *, stream: bool = False, timeout: httpx.Timeout | None = None
    ) -> httpx.Response:
        """Send ``call``, retrying as ``self.retry`` allows; the final response (any status) or ConnectionFailed."""
        attempt = 0
        while True:
            request = proto.build_request(self._http, self.url, call, self.token, timeout or self.timeout)
            request.headers.update(self._headers)
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retry.after_error(exc, attempt, idempotent=call.idempotent)
                if delay is None:
                    raise proto.connection_failed(self.url, exc, attempt + 1, call) from exc
            else:
                delay = proto.retry_delay(self.retry, call, response, attempt)
                if delay is None:
                    return response
                await response.aclose()
            await anyio.sleep(delay)
            attempt += 1

    async def _get(self, call: proto.Call, model: type[proto.M]) -> proto.M:
        return proto.decode(call, await self.send(call), model)

    # --- studies -------------------------------------------------------------------------------------------

    async def submit(self, spec: proto.SpecLike) -> AsyncStudy:
        """Queue a study. ``spec``: a StudySpec, a dict, a YAML/JSON file path or YAML/JSON text.

        The spec is validated here first (ValidationFailed, status_code None), then by the service
        (ValidationFailed 422 for its limits, Forbidden 403 for user code it does not run).
        """
        data = await self._get(proto.submit_call(proto.coerce_spec(spec)), StudyPublic)
        return AsyncStudy(self, data)

    async def study(self, study_id: int) -> AsyncStudy:
        """The study with this id (NotFound if there is none, or it is not yours)."""
        return AsyncStudy(self, await self._get(proto.study_call(study_id), StudyPublic))

    async def studies(
        self, *, status: StudyStatus | str | None = None, limit: int = 50, offset: int = 0
    ) -> AsyncStudyList:
        """Your studies (an admin: everyone's), newest first; ``.count`` is the total over all pages."""
        page = await self._get(proto.list_studies_call(status, limit, offset), StudiesPublic)
        out = AsyncStudyList(AsyncStudy(self, s) for s in page.data)
        out.count = page.count
        return out

    async def cancel(self, study_id: int) -> AsyncStudy:
        """Cancel a study (a queued one at once, a running one within seconds); a finished one is unchanged."""
        return AsyncStudy(self, await self._get(proto.cancel_call(study_id), StudyPublic))

    async def delete(self, study_id: int) -> None:
        """Delete a study with everything it stored (a running one is stopped first)."""
        call = proto.delete_call(study_id)
        proto.check(call, await self.send(call))

    async def trials(
        self, study_id: int, *, status: TrialStatus | str | None = None, limit: int = 1000, offset: int = 0
    ) -> list[TrialPublic]:
        return (await self._get(proto.trials_call(study_id, status, limit, offset), TrialsPublic)).data

    async def metrics(self, study_id: int, trial_id: int, *, after_step: int | None = None) -> list[MetricPoint]:
        """One trial's learning curve, in step order."""
        return (await self._get(proto.metrics_call(study_id, trial_id, after_step), MetricPointsPublic)).data

    async def best(self, study_id: int) -> Best:
        """The study's best configuration (NotReady until the study has finished with a completed trial)."""
        return await self._get(proto.best_call(study_id), Best)

    async def bests(self, study_id: int) -> list[Best]:
        """All ranked best configurations of the study, best first."""
        page = await self._get(proto.bests_call(study_id), BestsPublic)
        return [Best.model_validate(b.model_dump()) for b in page.data]

    async def events(self, study_id: int, *, after: int | None = None) -> AsyncIterator[StudyEventPublic]:
        """The study's events from the start (or after event id ``after``), live, until it finishes.

        Reconnects after a dropped connection and resumes after the last event received (``Last-Event-ID``).
        """
        state = proto.EventStreamState(study_id, after=after, policy=self.retry, base_url=self.url)
        while not state.done:
            call = state.call()
            received = 0
            dropped: httpx.TransportError | None = None
            response = await self.send(call, stream=True, timeout=proto.stream_timeout(self.timeout))
            try:
                if not response.is_success:
                    await response.aread()
                    proto.check(call, response)
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
                    message = decoder.feed(line)
                    if message is not None:
                        received += 1
                        yield state.on_message(message)
                        if state.done:
                            return
            except httpx.TransportError as exc:  # dropped mid-stream: resume after the last event
                dropped = exc
            finally:
                await response.aclose()
            if dropped is not None:
                await anyio.sleep(state.reconnect_delay(dropped))
                continue
            # The stream ended without "finished": the study ended before (or without) one, or a proxy cut it.
            if received == 0 and (await self.study(study_id)).finished:
                return
            if received == 0:
                await anyio.sleep(state.reconnect_delay(None))

    # --- results and registry ------------------------------------------------------------------------------

    # --- meta-training runs (the learned optimizer) ---------------------------------------------------------

    async def submit_meta_run(self, spec: proto.MetaSpecLike) -> MetaRunPublic:
        return await self._get(proto.submit_meta_run_call(proto.coerce_meta_spec(spec)), MetaRunPublic)

    async def meta_runs(self, *, name: str | None = None, limit: int = 50, offset: int = 0) -> list[MetaRunPublic]:
        return (await self._get(proto.meta_runs_call(name, limit, offset), MetaRunsPublic)).data

    async def meta_run(self, run_id: int) -> MetaRunPublic:
        return await self._get(proto.meta_run_call(run_id), MetaRunPublic)

    async def cancel_meta_run(self, run_id: int) -> MetaRunPublic:
        return await self._get(proto.cancel_meta_run_call(run_id), MetaRunPublic)

    async def recommend(self, task: proto.TaskLike, *, limit: int = 5) -> list[RecommendationPublic]:
        """Stored configurations for the tasks closest to ``task`` (a TaskSpec, dict, or file), nearest first."""
        call = proto.recommend_call(proto.coerce_task(task), limit)
        return (await self._get(call, RecommendationsPublic)).data

    async def families(self) -> list[Family]:
        """Every optimizer family the service can search, with hyperparameters, defaults and ranges."""
        call = proto.families_call()
        return proto.decode(call, await self.send(call), FamiliesPublic).data

    async def schedules(self) -> list[Schedule]:
        call = proto.schedules_call()
        return proto.decode(call, await self.send(call), SchedulesPublic).data

    async def health(self) -> HealthPublic:
        """Liveness (``/healthz``): the service answers; also says its version and auth mode."""
        return await self._get(proto.health_call(), HealthPublic)

    async def ready(self) -> HealthPublic:
        """Readiness (``/readyz``): ``status`` is "ok" when its database and Ray answer, and ``checks`` says which."""
        return await self._get(proto.ready_call(), HealthPublic)


class AsyncStudy(StudyView):
    """A submitted study (async). Attributes reflect the last read (``await refresh()`` reads again)."""

    def __init__(self, client: AsyncClient, data: StudyPublic) -> None:
        self.client = client
        self.data = data

    async def refresh(self) -> AsyncStudy:
        self.data = await self.client._get(proto.study_call(self.id), StudyPublic)
        return self

    async def wait(
        self,
        *,
        progress: bool | ProgressKind = True,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        raise_on_failure: bool = True,
    ) -> AsyncStudy:
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
                await anyio.sleep(clock.next_sleep(self))
                await self.refresh()
        finally:
            display.close()
        final_check(self, raise_on_failure)
        return self

    def events(self, *, after: int | None = None) -> AsyncIterator[StudyEventPublic]:
        """The live event stream (see ``AsyncClient.events``): ``async for event in study.events()``."""
        return self.client.events(self.id, after=after)

    async def trials(self, *, status: TrialStatus | str | None = None) -> list[TrialPublic]:
        return await self.client.trials(self.id, status=status)

    async def metrics(self, trial_id: int, *, after_step: int | None = None) -> list[MetricPoint]:
        return await self.client.metrics(self.id, trial_id, after_step=after_step)

    async def best(self) -> Best:
        return await self.client.best(self.id)

    async def cancel(self) -> AsyncStudy:
        self.data = (await self.client.cancel(self.id)).data
        return self

    async def delete(self) -> None:
        await self.client.delete(self.id)
