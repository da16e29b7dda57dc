import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Label(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_UNSPECIFIED: _ClassVar[Label]
    LABEL_BEARISH: _ClassVar[Label]
    LABEL_NEUTRAL: _ClassVar[Label]
    LABEL_BULLISH: _ClassVar[Label]

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_LEXICON: _ClassVar[Tier]
    TIER_LOCAL: _ClassVar[Tier]
    TIER_GEMINI: _ClassVar[Tier]
    TIER_ANTHROPIC: _ClassVar[Tier]

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_PRELIMINARY: _ClassVar[Phase]
    PHASE_FINAL: _ClassVar[Phase]

class CacheHit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_HIT_UNSPECIFIED: _ClassVar[CacheHit]
    CACHE_HIT_MISS: _ClassVar[CacheHit]
    CACHE_HIT_EXACT: _ClassVar[CacheHit]
    CACHE_HIT_NEAR: _ClassVar[CacheHit]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_OK: _ClassVar[Outcome]
    OUTCOME_ERROR: _ClassVar[Outcome]
    OUTCOME_BREAKER_OPEN: _ClassVar[Outcome]
    OUTCOME_RATE_LIMITED: _ClassVar[Outcome]
    OUTCOME_SKIPPED: _ClassVar[Outcome]
    OUTCOME_INVALID_ANSWER: _ClassVar[Outcome]

class PrefilterDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREFILTER_DECISION_UNSPECIFIED: _ClassVar[PrefilterDecision]
    PREFILTER_DECISION_ABOVE_THRESHOLD: _ClassVar[PrefilterDecision]
    PREFILTER_DECISION_SENT_ON_BELOW_THRESHOLD: _ClassVar[PrefilterDecision]
    PREFILTER_DECISION_SHED_UNDER_LOAD: _ClassVar[PrefilterDecision]
    PREFILTER_DECISION_SKIPPED_BY_THRESHOLD: _ClassVar[PrefilterDecision]
    PREFILTER_DECISION_EXEMPT: _ClassVar[PrefilterDecision]

class PressureLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESSURE_LEVEL_UNSPECIFIED: _ClassVar[PressureLevel]
    PRESSURE_LEVEL_NORMAL: _ClassVar[PressureLevel]
    PRESSURE_LEVEL_HIGH: _ClassVar[PressureLevel]
    PRESSURE_LEVEL_CRITICAL: _ClassVar[PressureLevel]

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
LABEL_UNSPECIFIED: Label
LABEL_BEARISH: Label
LABEL_NEUTRAL: Label
LABEL_BULLISH: Label
TIER_UNSPECIFIED: Tier
TIER_LEXICON: Tier
TIER_LOCAL: Tier
TIER_GEMINI: Tier
TIER_ANTHROPIC: Tier
PHASE_UNSPECIFIED: Phase
PHASE_PRELIMINARY: Phase
PHASE_FINAL: Phase
CACHE_HIT_UNSPECIFIED: CacheHit
CACHE_HIT_MISS: CacheHit
CACHE_HIT_EXACT: CacheHit
CACHE_HIT_NEAR: CacheHit
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_NORMAL: Priority
PRIORITY_HIGH: Priority
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_OK: Outcome
OUTCOME_ERROR: Outcome
OUTCOME_BREAKER_OPEN: Outcome
OUTCOME_RATE_LIMITED: Outcome
OUTCOME_SKIPPED: Outcome
OUTCOME_INVALID_ANSWER: Outcome
PREFILTER_DECISION_UNSPECIFIED: PrefilterDecision
PREFILTER_DECISION_ABOVE_THRESHOLD: PrefilterDecision
PREFILTER_DECISION_SENT_ON_BELOW_THRESHOLD: PrefilterDecision
PREFILTER_DECISION_SHED_UNDER_LOAD: PrefilterDecision
PREFILTER_DECISION_SKIPPED_BY_THRESHOLD: PrefilterDecision
PREFILTER_DECISION_EXEMPT: PrefilterDecision
PRESSURE_LEVEL_UNSPECIFIED: PressureLevel
PRESSURE_LEVEL_NORMAL: PressureLevel
PRESSURE_LEVEL_HIGH: PressureLevel
PRESSURE_LEVEL_CRITICAL: PressureLevel
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState
BREAKER_STATE_OPEN: BreakerState

class NewsItem(_message.Message):
    __slots__ = ("id", "ticker", "title", "summary", "source", "published_at", "url")
    ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    ticker: str
    title: str
    summary: str
    source: str
    published_at: _timestamp_pb2.Timestamp
    url: str
    def __init__(self, id: _Optional[str] = ..., ticker: _Optional[str] = ..., title: _Optional[str] = ..., summary: _Optional[str] = ..., source: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., url: _Optional[str] = ...) -> None: ...

class AlertOptions(_message.Message):
    __slots__ = ("channel", "last_price", "change_pct")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PCT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    last_price: float
    change_pct: float
    def __init__(self, channel: _Optional[str] = ..., last_price: _Optional[float] = ..., change_pct: _Optional[float] = ...) -> None: ...

class ClassifyOptions(_message.Message):
    __slots__ = ("priority", "skip_cache", "min_prescore", "allowed_tiers", "require_llm", "alert")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SKIP_CACHE_FIELD_NUMBER: _ClassVar[int]
    MIN_PRESCORE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TIERS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_LLM_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    priority: Priority
    skip_cache: bool
    min_prescore: float
    allowed_tiers: _containers.RepeatedScalarFieldContainer[Tier]
    require_llm: bool
    alert: AlertOptions
    def __init__(self, priority: _Optional[_Union[Priority, str]] = ..., skip_cache: _Optional[bool] = ..., min_prescore: _Optional[float] = ..., allowed_tiers: _Optional[_Iterable[_Union[Tier, str]]] = ..., require_llm: _Optional[bool] = ..., alert: _Optional[_Union[AlertOptions, _Mapping]] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("item", "options")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    item: NewsItem
    options: ClassifyOptions
    def __init__(self, item: _Optional[_Union[NewsItem, _Mapping]] = ..., options: _Optional[_Union[ClassifyOptions, _Mapping]] = ...) -> None: ...

class KeywordHit(_message.Message):
    __slots__ = ("phrase", "weight")
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    phrase: str
    weight: float
    def __init__(self, phrase: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class Prescore(_message.Message):
    __slots__ = ("compound", "keyword_score", "score", "hits")
    COMPOUND_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    compound: float
    keyword_score: float
    score: float
    hits: _containers.RepeatedCompositeFieldContainer[KeywordHit]
    def __init__(self, compound: _Optional[float] = ..., keyword_score: _Optional[float] = ..., score: _Optional[float] = ..., hits: _Optional[_Iterable[_Union[KeywordHit, _Mapping]]] = ...) -> None: ...

class TierAttempt(_message.Message):
    __slots__ = ("tier", "model", "outcome", "attempts", "latency", "detail")
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tier: Tier
    model: str
    outcome: Outcome
    attempts: int
    latency: _duration_pb2.Duration
    detail: str
    def __init__(self, tier: _Optional[_Union[Tier, str]] = ..., model: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., attempts: _Optional[int] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("tier", "model", "cache_hit", "attempts", "tiers", "degraded", "reason", "prefiltered", "latency", "tokens_in", "tokens_out", "cost_usd", "prompt_version", "cache_similarity", "cache_source_id", "prefilter")
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREFILTERED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CACHE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    CACHE_SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFILTER_FIELD_NUMBER: _ClassVar[int]
    tier: Tier
    model: str
    cache_hit: CacheHit
    attempts: int
    tiers: _containers.RepeatedCompositeFieldContainer[TierAttempt]
    degraded: bool
    reason: str
    prefiltered: bool
    latency: _duration_pb2.Duration
    tokens_in: int
    tokens_out: int
    cost_usd: float
    prompt_version: str
    cache_similarity: float
    cache_source_id: str
    prefilter: PrefilterDecision
    def __init__(self, tier: _Optional[_Union[Tier, str]] = ..., model: _Optional[str] = ..., cache_hit: _Optional[_Union[CacheHit, str]] = ..., attempts: _Optional[int] = ..., tiers: _Optional[_Iterable[_Union[TierAttempt, _Mapping]]] = ..., degraded: _Optional[bool] = ..., reason: _Optional[str] = ..., prefiltered: _Optional[bool] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., cost_usd: _Optional[float] = ..., prompt_version: _Optional[str] = ..., cache_similarity: _Optional[float] = ..., cache_source_id: _Optional[str] = ..., prefilter: _Optional[_Union[PrefilterDecision, str]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("id", "label", "score", "confidence", "rationale", "prescore", "provenance", "phase")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    PRESCORE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: Label
    score: float
    confidence: float
    rationale: str
    prescore: Prescore
    provenance: Provenance
    phase: Phase
    def __init__(self, id: _Optional[str] = ..., label: _Optional[_Union[Label, str]] = ..., score: _Optional[float] = ..., confidence: _Optional[float] = ..., rationale: _Optional[str] = ..., prescore: _Optional[_Union[Prescore, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., phase: _Optional[_Union[Phase, str]] = ...) -> None: ...

class ClassifyBatchRequest(_message.Message):
    __slots__ = ("item", "options", "preliminary")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PRELIMINARY_FIELD_NUMBER: _ClassVar[int]
    item: NewsItem
    options: ClassifyOptions
    preliminary: bool
    def __init__(self, item: _Optional[_Union[NewsItem, _Mapping]] = ..., options: _Optional[_Union[ClassifyOptions, _Mapping]] = ..., preliminary: _Optional[bool] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class ClassifyBatchResponse(_message.Message):
    __slots__ = ("id", "result", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    result: ClassifyResponse
    error: ItemError
    def __init__(self, id: _Optional[str] = ..., result: _Optional[_Union[ClassifyResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class GPUStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GPUDevice(_message.Message):
    __slots__ = ("index", "name", "vendor", "vram_total_bytes", "vram_used_bytes", "vram_free_bytes", "busy_percent", "temperature_celsius", "source", "integrated")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    VRAM_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    VRAM_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    VRAM_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BUSY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INTEGRATED_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    vendor: str
    vram_total_bytes: int
    vram_used_bytes: int
    vram_free_bytes: int
    busy_percent: float
    temperature_celsius: float
    source: str
    integrated: bool
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., vendor: _Optional[str] = ..., vram_total_bytes: _Optional[int] = ..., vram_used_bytes: _Optional[int] = ..., vram_free_bytes: _Optional[int] = ..., busy_percent: _Optional[float] = ..., temperature_celsius: _Optional[float] = ..., source: _Optional[str] = ..., integrated: _Optional[bool] = ...) -> None: ...

class ModelState(_message.Message):
    __slots__ = ("name", "loaded", "vram_bytes", "warm", "warmup_latency", "expires_at", "size_bytes", "context_length", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    WARMUP_LATENCY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    loaded: bool
    vram_bytes: int
    warm: bool
    warmup_latency: _duration_pb2.Duration
    expires_at: _timestamp_pb2.Timestamp
    size_bytes: int
    context_length: int
    error: str
    def __init__(self, name: _Optional[str] = ..., loaded: _Optional[bool] = ..., vram_bytes: _Optional[int] = ..., warm: _Optional[bool] = ..., warmup_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., context_length: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class GPUStatusResponse(_message.Message):
    __slots__ = ("devices", "reader", "reader_error", "pressure", "model", "last_cleanup_at", "last_cleanup_reason", "cleanups", "local_admitting", "gate_reason", "observed_at", "pressure_percent", "pressure_card", "vram_not_freed", "vram_message", "restarts", "gpu_concurrency", "concurrency_cut", "consecutive_failures", "queue", "recovery_phase")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    READER_ERROR_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LAST_CLEANUP_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_CLEANUP_REASON_FIELD_NUMBER: _ClassVar[int]
    CLEANUPS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ADMITTING_FIELD_NUMBER: _ClassVar[int]
    GATE_REASON_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PRESSURE_CARD_FIELD_NUMBER: _ClassVar[int]
    VRAM_NOT_FREED_FIELD_NUMBER: _ClassVar[int]
    VRAM_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    GPU_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_CUT_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_PHASE_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[GPUDevice]
    reader: str
    reader_error: str
    pressure: PressureLevel
    model: ModelState
    last_cleanup_at: _timestamp_pb2.Timestamp
    last_cleanup_reason: str
    cleanups: int
    local_admitting: bool
    gate_reason: str
    observed_at: _timestamp_pb2.Timestamp
    pressure_percent: float
    pressure_card: str
    vram_not_freed: bool
    vram_message: str
    restarts: int
    gpu_concurrency: int
    concurrency_cut: bool
    consecutive_failures: int
    queue: GPUQueueStats
    recovery_phase: str
    def __init__(self, devices: _Optional[_Iterable[_Union[GPUDevice, _Mapping]]] = ..., reader: _Optional[str] = ..., reader_error: _Optional[str] = ..., pressure: _Optional[_Union[PressureLevel, str]] = ..., model: _Optional[_Union[ModelState, _Mapping]] = ..., last_cleanup_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_cleanup_reason: _Optional[str] = ..., cleanups: _Optional[int] = ..., local_admitting: _Optional[bool] = ..., gate_reason: _Optional[str] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pressure_percent: _Optional[float] = ..., pressure_card: _Optional[str] = ..., vram_not_freed: _Optional[bool] = ..., vram_message: _Optional[str] = ..., restarts: _Optional[int] = ..., gpu_concurrency: _Optional[int] = ..., concurrency_cut: _Optional[bool] = ..., consecutive_failures: _Optional[int] = ..., queue: _Optional[_Union[GPUQueueStats, _Mapping]] = ..., recovery_phase: _Optional[str] = ...) -> None: ...

class GPUQueueStats(_message.Message):
    __slots__ = ("limit", "ceiling", "in_flight", "waiting", "started", "halvings", "grows", "spilled_full", "spilled_no_time", "canceled", "service_time", "displaced", "overtaken", "shared", "lease_waits", "lease_fallbacks")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CEILING_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    HALVINGS_FIELD_NUMBER: _ClassVar[int]
    GROWS_FIELD_NUMBER: _ClassVar[int]
    SPILLED_FULL_FIELD_NUMBER: _ClassVar[int]
    SPILLED_NO_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISPLACED_FIELD_NUMBER: _ClassVar[int]
    OVERTAKEN_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    LEASE_WAITS_FIELD_NUMBER: _ClassVar[int]
    LEASE_FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    ceiling: int
    in_flight: int
    waiting: int
    started: int
    halvings: int
    grows: int
    spilled_full: int
    spilled_no_time: int
    canceled: int
    service_time: _duration_pb2.Duration
    displaced: int
    overtaken: int
    shared: str
    lease_waits: int
    lease_fallbacks: int
    def __init__(self, limit: _Optional[int] = ..., ceiling: _Optional[int] = ..., in_flight: _Optional[int] = ..., waiting: _Optional[int] = ..., started: _Optional[int] = ..., halvings: _Optional[int] = ..., grows: _Optional[int] = ..., spilled_full: _Optional[int] = ..., spilled_no_time: _Optional[int] = ..., canceled: _Optional[int] = ..., service_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., displaced: _Optional[int] = ..., overtaken: _Optional[int] = ..., shared: _Optional[str] = ..., lease_waits: _Optional[int] = ..., lease_fallbacks: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QuotaWindow(_message.Message):
    __slots__ = ("window", "used", "limit", "resets_at", "shared")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    window: str
    used: int
    limit: int
    resets_at: _timestamp_pb2.Timestamp
    shared: bool
    def __init__(self, window: _Optional[str] = ..., used: _Optional[int] = ..., limit: _Optional[int] = ..., resets_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shared: _Optional[bool] = ...) -> None: ...

class TierStats(_message.Message):
    __slots__ = ("tier", "enabled", "model", "breaker_state", "consecutive_failures", "quotas", "errors_last_hour", "answered", "breaker_transitions", "quota_backend")
    class ErrorsLastHourEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TIER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_LAST_HOUR_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    BREAKER_TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BACKEND_FIELD_NUMBER: _ClassVar[int]
    tier: Tier
    enabled: bool
    model: str
    breaker_state: BreakerState
    consecutive_failures: int
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaWindow]
    errors_last_hour: _containers.ScalarMap[str, int]
    answered: int
    breaker_transitions: int
    quota_backend: str
    def __init__(self, tier: _Optional[_Union[Tier, str]] = ..., enabled: _Optional[bool] = ..., model: _Optional[str] = ..., breaker_state: _Optional[_Union[BreakerState, str]] = ..., consecutive_failures: _Optional[int] = ..., quotas: _Optional[_Iterable[_Union[QuotaWindow, _Mapping]]] = ..., errors_last_hour: _Optional[_Mapping[str, int]] = ..., answered: _Optional[int] = ..., breaker_transitions: _Optional[int] = ..., quota_backend: _Optional[str] = ...) -> None: ...

class RequestStats(_message.Message):
    __slots__ = ("classify_calls", "batch_streams", "batch_items", "invalid", "degraded", "failed", "open_streams", "cancelled", "alert_calls")
    CLASSIFY_CALLS_FIELD_NUMBER: _ClassVar[int]
    BATCH_STREAMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    INVALID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    OPEN_STREAMS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    ALERT_CALLS_FIELD_NUMBER: _ClassVar[int]
    classify_calls: int
    batch_streams: int
    batch_items: int
    invalid: int
    degraded: int
    failed: int
    open_streams: int
    cancelled: int
    alert_calls: int
    def __init__(self, classify_calls: _Optional[int] = ..., batch_streams: _Optional[int] = ..., batch_items: _Optional[int] = ..., invalid: _Optional[int] = ..., degraded: _Optional[int] = ..., failed: _Optional[int] = ..., open_streams: _Optional[int] = ..., cancelled: _Optional[int] = ..., alert_calls: _Optional[int] = ...) -> None: ...

class CacheStats(_message.Message):
    __slots__ = ("backend", "exact_hits", "near_hits", "misses", "shared_in_flight", "guard_refusals", "stored", "evicted", "entries")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EXACT_HITS_FIELD_NUMBER: _ClassVar[int]
    NEAR_HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    SHARED_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    GUARD_REFUSALS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    EVICTED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    backend: str
    exact_hits: int
    near_hits: int
    misses: int
    shared_in_flight: int
    guard_refusals: int
    stored: int
    evicted: int
    entries: int
    def __init__(self, backend: _Optional[str] = ..., exact_hits: _Optional[int] = ..., near_hits: _Optional[int] = ..., misses: _Optional[int] = ..., shared_in_flight: _Optional[int] = ..., guard_refusals: _Optional[int] = ..., stored: _Optional[int] = ..., evicted: _Optional[int] = ..., entries: _Optional[int] = ...) -> None: ...

class PrefilterStats(_message.Message):
    __slots__ = ("seen", "sent_on", "skipped", "sent_on_below_threshold", "shed_under_load", "skipped_by_threshold", "mode")
    SEEN_FIELD_NUMBER: _ClassVar[int]
    SENT_ON_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SENT_ON_BELOW_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SHED_UNDER_LOAD_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    seen: int
    sent_on: int
    skipped: int
    sent_on_below_threshold: int
    shed_under_load: int
    skipped_by_threshold: int
    mode: str
    def __init__(self, seen: _Optional[int] = ..., sent_on: _Optional[int] = ..., skipped: _Optional[int] = ..., sent_on_below_threshold: _Optional[int] = ..., shed_under_load: _Optional[int] = ..., skipped_by_threshold: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class CostStats(_message.Message):
    __slots__ = ("today_usd", "month_usd", "daily_alert_usd", "monthly_alert_usd", "today_by_provider", "month_by_provider", "zone", "day_started_at", "month_started_at", "budget_stop", "stopped_until", "backend")
    class TodayByProviderEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class MonthByProviderEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TODAY_USD_FIELD_NUMBER: _ClassVar[int]
    MONTH_USD_FIELD_NUMBER: _ClassVar[int]
    DAILY_ALERT_USD_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_ALERT_USD_FIELD_NUMBER: _ClassVar[int]
    TODAY_BY_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MONTH_BY_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    DAY_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    MONTH_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STOP_FIELD_NUMBER: _ClassVar[int]
    STOPPED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    today_usd: float
    month_usd: float
    daily_alert_usd: float
    monthly_alert_usd: float
    today_by_provider: _containers.ScalarMap[str, float]
    month_by_provider: _containers.ScalarMap[str, float]
    zone: str
    day_started_at: _timestamp_pb2.Timestamp
    month_started_at: _timestamp_pb2.Timestamp
    budget_stop: bool
    stopped_until: _timestamp_pb2.Timestamp
    backend: str
    def __init__(self, today_usd: _Optional[float] = ..., month_usd: _Optional[float] = ..., daily_alert_usd: _Optional[float] = ..., monthly_alert_usd: _Optional[float] = ..., today_by_provider: _Optional[_Mapping[str, float]] = ..., month_by_provider: _Optional[_Mapping[str, float]] = ..., zone: _Optional[str] = ..., day_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., month_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., budget_stop: _Optional[bool] = ..., stopped_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backend: _Optional[str] = ...) -> None: ...

class UsageLogStats(_message.Message):
    __slots__ = ("path", "written", "dropped", "write_errors")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    WRITE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    path: str
    written: int
    dropped: int
    write_errors: int
    def __init__(self, path: _Optional[str] = ..., written: _Optional[int] = ..., dropped: _Optional[int] = ..., write_errors: _Optional[int] = ...) -> None: ...

class AlertRequest(_message.Message):
    __slots__ = ("item", "options", "alert")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    item: NewsItem
    options: ClassifyOptions
    alert: AlertOptions
    def __init__(self, item: _Optional[_Union[NewsItem, _Mapping]] = ..., options: _Optional[_Union[ClassifyOptions, _Mapping]] = ..., alert: _Optional[_Union[AlertOptions, _Mapping]] = ...) -> None: ...

class AlertResponse(_message.Message):
    __slots__ = ("channel", "message_id", "preliminary", "duplicate", "complete")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PRELIMINARY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    message_id: str
    preliminary: ClassifyResponse
    duplicate: bool
    complete: bool
    def __init__(self, channel: _Optional[str] = ..., message_id: _Optional[str] = ..., preliminary: _Optional[_Union[ClassifyResponse, _Mapping]] = ..., duplicate: _Optional[bool] = ..., complete: _Optional[bool] = ...) -> None: ...

class AlertStats(_message.Message):
    __slots__ = ("posted", "edited", "timed_out", "duplicates", "failed", "broken_channels", "pending", "complete")
    class FailedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    POSTED_FIELD_NUMBER: _ClassVar[int]
    EDITED_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    BROKEN_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    posted: int
    edited: int
    timed_out: int
    duplicates: int
    failed: _containers.ScalarMap[str, int]
    broken_channels: _containers.RepeatedScalarFieldContainer[str]
    pending: int
    complete: int
    def __init__(self, posted: _Optional[int] = ..., edited: _Optional[int] = ..., timed_out: _Optional[int] = ..., duplicates: _Optional[int] = ..., failed: _Optional[_Mapping[str, int]] = ..., broken_channels: _Optional[_Iterable[str]] = ..., pending: _Optional[int] = ..., complete: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("started_at", "uptime", "requests", "tiers", "cache", "prefilter", "cost", "version", "alerts", "usage_log")
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    PREFILTER_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    USAGE_LOG_FIELD_NUMBER: _ClassVar[int]
    started_at: _timestamp_pb2.Timestamp
    uptime: _duration_pb2.Duration
    requests: RequestStats
    tiers: _containers.RepeatedCompositeFieldContainer[TierStats]
    cache: CacheStats
    prefilter: PrefilterStats
    cost: CostStats
    version: str
    alerts: AlertStats
    usage_log: UsageLogStats
    def __init__(self, started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., requests: _Optional[_Union[RequestStats, _Mapping]] = ..., tiers: _Optional[_Iterable[_Union[TierStats, _Mapping]]] = ..., cache: _Optional[_Union[CacheStats, _Mapping]] = ..., prefilter: _Optional[_Union[PrefilterStats, _Mapping]] = ..., cost: _Optional[_Union[CostStats, _Mapping]] = ..., version: _Optional[str] = ..., alerts: _Optional[_Union[AlertStats, _Mapping]] = ..., usage_log: _Optional[_Union[UsageLogStats, _Mapping]] = ...) -> None: ...

class ListAlertChannelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AlertChannel(_message.Message):
    __slots__ = ("name", "webhook_id", "default", "broken")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    BROKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    webhook_id: str
    default: bool
    broken: bool
    def __init__(self, name: _Optional[str] = ..., webhook_id: _Optional[str] = ..., default: _Optional[bool] = ..., broken: _Optional[bool] = ...) -> None: ...

class ListAlertChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[AlertChannel]
    def __init__(self, channels: _Optional[_Iterable[_Union[AlertChannel, _Mapping]]] = ...) -> None: ...

class CleanupGPURequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CleanupGPUResponse(_message.Message):
    __slots__ = ("phase",)
    PHASE_FIELD_NUMBER: _ClassVar[int]
    phase: str
    def __init__(self, phase: _Optional[str] = ...) -> None: ...
