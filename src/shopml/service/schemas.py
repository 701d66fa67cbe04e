"""Request and response bodies of the HTTP service (pydantic v2; they drive validation,
the 422 messages and the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Id",
    "BoostArg",
    "UserQuery",
    "HistoryRequest",
    "Recommendation",
    "Recommendations",
    "RulesIn",
    "SessionEvent",
    "SessionRequest",
    "SessionPrediction",
    "PriceRequest",
    "PriceProposal",
    "DemandCurve",
    "ErrorOut",
    "Health",
]

MAX_HISTORY = 200
MAX_K = 100
MAX_ID = 128

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
ORDER_HELP = "Order inside a revenue or profit slate: relevance (likeliest first) or value (the ranking key)."
#: ``ITEM=DELTA`` of a boost rule in a query string
BoostArg = Annotated[str, StringConstraints(max_length=MAX_ID + 20, pattern=r"^[^=]+=[-+]?[0-9]{1,7}(\.[0-9]{1,6})?$")]


class UserQuery(BaseModel):
    """The query string of ``GET /v1/users/{id}/recommendations``, validated in one pass (one
    model instead of 11 parameters: FastAPI's per-parameter work was most of a request)."""

    k: int = Field(10, ge=1, le=MAX_K)
    explain: bool = False
    exclude: list[Id] | None = Field(None, max_length=1000, description="Never return this item (repeatable).")
    price_min: float | None = Field(None, ge=0, le=1e9)
    price_max: float | None = Field(None, ge=0, le=1e9)
    max_per_category: int | None = Field(None, ge=1, le=MAX_K)
    pin: list[Id] | None = Field(None, max_length=MAX_K, description="Show first when eligible (repeatable).")
    boost: list[BoostArg] | None = Field(None, max_length=1000, description="ITEM=DELTA added to its score.")
    new_slots: int | None = Field(None, ge=0, le=MAX_K, description="Slots kept for items with no interactions yet.")
    objective: Literal["relevance", "revenue", "profit"] = "relevance"
    blend: float = Field(1.0, ge=0, le=1, description="0 = relevance, 1 = expected value.")
    assumed_margin: float | None = Field(None, ge=0, lt=1)
    order: Literal["relevance", "value"] = Field("relevance", description=ORDER_HELP)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(BaseModel):
    item_id: str = Field(description="A history item that drove this recommendation.")
    contribution: float = Field(description="Drop in the recommended item's score when this history item is removed.")


class Recommendation(BaseModel):
    item_id: str
    score: float
    because: list[Reason] = Field(default_factory=list)
    pinned: bool = Field(False, description="Placed first by a pinning rule.")
    p_buy: float | None = Field(None, description="Calibrated P(next purchase = this item), with a value objective.")
    expected_value: float | None = Field(None, description="p_buy x price (revenue) or x (price - unit cost) (profit).")


class RulesIn(_Strict):
    """The shop's rules for one request, applied after scoring and before the top-k."""

    exclude: list[Id] = Field(default_factory=list, max_length=10_000, description="Never return these (out of stock).")
    price_min: Annotated[Finite, Field(ge=0, le=1e9)] | None = None
    price_max: Annotated[Finite, Field(ge=0, le=1e9)] | None = None
    max_per_category: int | None = Field(None, ge=1, le=MAX_K, description="At most this many items per category.")
    pinned: list[Id] = Field(default_factory=list, max_length=MAX_K, description="Shown first, in order, when eligible.")
    boost: dict[Id, Annotated[Finite, Field(ge=-1e6, le=1e6)]] = Field(
        default_factory=dict, max_length=1000, description="Added to an item's score before ranking.")
    new_slots: int = Field(0, ge=0, le=MAX_K, description="At least this many slots (after the pins) for the "
                                                         "best items with no interactions yet, when there are any.")


class Recommendations(BaseModel):
    model: str = Field(description="Component that produced the ranking.")
    items: list[Recommendation]
    fallback: str | None = Field(None, description="Set when a default answer was given, e.g. 'popularity'.")
    unknown_items: list[str] = Field(default_factory=list, description="History items the model does not know.")
    objective: Literal["relevance", "revenue", "profit"] = "relevance"
    assumed_margin: float | None = Field(None, description="Margin assumed where an item's unit cost is unknown.")
    order: Literal["relevance", "value"] | None = Field(None, description="Order inside a revenue or profit slate.")


class HistoryRequest(_Strict):
    """A history given at request time (new or anonymous users), oldest item first."""

    items: list[Id] = Field(max_length=MAX_HISTORY, description="Item ids, oldest first.")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    explain: bool = Field(False, description="Add the history items that drove each recommendation.")
    candidates: list[Id] | None = Field(None, max_length=10_000, description="Rank only these items.")
    rules: RulesIn | None = None
    objective: Literal["relevance", "revenue", "profit"] = "relevance"
    blend: Annotated[Finite, Field(ge=0, le=1)] = Field(1.0, description="0 = relevance, 1 = expected value.")
    assumed_margin: Annotated[Finite, Field(ge=0, lt=1)] | None = None
    order: Literal["relevance", "value"] = Field("relevance", description=ORDER_HELP)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"items": ["i1", "i2"], "k": 5, "explain": True}]}
    )


class SessionEvent(_Strict):
    item_id: Id
    event_type: Literal["view", "cart", "purchase"] = "view"
    dwell_seconds: Annotated[Finite, Field(ge=0, le=86_400)] = Field(60.0, description="Time spent on this event.")


class SessionRequest(_Strict):
    """The events of one ongoing session, oldest first."""

    events: list[SessionEvent] = Field(max_length=MAX_HISTORY)
    k: int = Field(10, ge=1, le=MAX_K)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"events": [{"item_id": "i1"}, {"item_id": "i2", "event_type": "cart", "dwell_seconds": 45}], "k": 5}]})


class ScoredItem(BaseModel):
    item_id: str
    score: float


class SessionPrediction(BaseModel):
    next_items: list[ScoredItem]
    purchase_probability: float | None = Field(None, ge=0, le=1)
    purchase_fallback: Literal["prior"] | None = Field(
        None, description="'prior' when the intent model knows no item of the session (or there are none): "
                          "purchase_probability is then the training purchase base rate, not a prediction.")
    fallback: str | None = None
    unknown_items: list[str] = Field(default_factory=list)


class PriceRequest(_Strict):
    """An item and the constraints its proposed price must satisfy."""

    item_id: Id
    objective: Literal["profit", "revenue"] = "profit"
    unit_cost: Annotated[Finite, Field(ge=0, le=1e9)] | None = None
    current_price: Annotated[Finite, Field(gt=0, le=1e9)] | None = None
    min_price: Annotated[Finite, Field(gt=0, le=1e9)] | None = None
    max_price: Annotated[Finite, Field(gt=0, le=1e9)] | None = None
    max_change: Annotated[Finite, Field(gt=0, le=10)] | None = Field(
        None, description="Largest relative change from the current price, e.g. 0.1 for ±10%."
    )
    min_margin: Annotated[Finite, Field(ge=0, lt=1)] | None = Field(
        None, description="Smallest (price - cost) / price."
    )
    endings: list[Annotated[Finite, Field(ge=0, lt=1)]] | None = Field(
        None, max_length=20, description="Allowed price endings (cents), e.g. [0.99, 0.49]."
    )


class GroupPriceRequest(_Strict):
    """Items that must share one price (one shelf price, a shared ladder), and the constraints
    every item's price must satisfy."""

    item_ids: list[Id] = Field(..., min_length=2, max_length=100)
    objective: Literal["profit", "revenue"] = "profit"
    unit_costs: list[Annotated[Finite, Field(ge=0, le=1e9)] | None] | None = Field(
        None, max_length=100, description="One per item (null = the run's cost); default: the run's costs."
    )
    min_price: Annotated[Finite, Field(gt=0, le=1e9)] | None = None
    max_price: Annotated[Finite, Field(gt=0, le=1e9)] | None = None
    max_change: Annotated[Finite, Field(gt=0, le=10)] | None = None
    min_margin: Annotated[Finite, Field(ge=0, lt=1)] | None = None
    endings: list[Annotated[Finite, Field(ge=0, lt=1)]] | None = Field(None, max_length=20)
    ladder: list[Annotated[Finite, Field(gt=0, le=1e9)]] | None = Field(
        None, max_length=200, description="The only allowed price points, e.g. [2.99, 3.49, 3.99]."
    )


class Interval(BaseModel):
    low: float
    high: float


class PriceProposal(BaseModel):
    item_id: str
    price: float
    expected_units: float
    revenue: float
    profit: float | None = None
    units_interval: Interval | None = None
    profit_interval: Interval | None = None
    binding: list[str] = Field(default_factory=list, description="Constraints that bind at the chosen price.")
    demand_model: str = Field("neural", description="The demand model that priced the item (neural, or "
                              "log-linear with a naive, DML or IV elasticity), chosen per item on validation weeks.")


class GroupItem(BaseModel):
    item_id: str
    price: float
    expected_units: float
    current_price: float
    unit_cost: float | None = None


class GroupPriceProposal(BaseModel):
    item_ids: list[str]
    price: float
    objective: str
    value: float = Field(..., description="The group's summed profit (or revenue) at the price.")
    value_interval: Interval | None = None
    items: list[GroupItem]
    demand_model: str = Field("neural", description="The demand model that priced the item (neural, or "
                              "log-linear with a naive, DML or IV elasticity), the neural one for a group.")


class DemandCurve(BaseModel):
    item_id: str
    prices: list[float]
    units: list[float]
    units_low: list[float] | None = None
    units_high: list[float] | None = None
    elasticity: list[float] | None = Field(None, description="d log units / d log price along the curve.")
    revenue: list[float]
    profit: list[float] | None = None
    current_price: float | None = None
    demand_model: str = Field("neural", description="The demand model that priced the item (neural, or "
                              "log-linear with a naive, DML or IV elasticity), chosen per item on validation weeks.")


class ErrorOut(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    run: str | None = Field(None, description="The served run's manifest fingerprint (never a path).")
    components: list[str] = Field(default_factory=list)
