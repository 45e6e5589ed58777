"""Valuation: what a minute of a clip is worth, learned from what delivered clips realised.

Pure logic, no Dagster (the assets are in ``gopro_assets/valuation``). docs/VALUATION.md
explains the choices; in short:

* **Rows.** One training row per delivery (batch x clip) with a realised price: the
  ``int_delivery_prices`` SQL model (target) joined to ``int_clip_features`` (features).
* **Features** are clip attributes only (:data:`FEATURES`), among them the telemetry
  (:data:`TELEMETRY`: GPS, IMU, drone, camera generation); :func:`check_features`
  refuses anything else, so nothing derived from prices can leak the target. The
  backtest also runs without the telemetry (:data:`TELEMETRY_FREE`) to show what it adds.
* **Split by time** (:func:`time_split`): train on earlier revenue months, test on the
  latest ones; :func:`assert_no_leakage` proves no test-month row is in training.
* **Model**: the tier's mean price times a premium learned by a scikit-learn ``Pipeline``
  (one-hot categoricals, passthrough numerics, ``GradientBoostingRegressor`` with the
  Huber loss and a fixed seed) on log(price / tier mean); against a baseline that
  predicts the training months' mean price of the clip's tier. The backtest's winner is
  refitted on every month and served.
* **Artefact**: the pickled estimator, content-addressed (version = latest revenue month +
  sha256 prefix), written through :class:`~gopro_assets.lake.storage.FileRoot` so an
  ``s3://`` lake works; same data -> same bytes -> same version.

Valuations are estimates for planning and analytics, never money owed: they are DOUBLEs,
kept apart from the integer-cent money path.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from gopro_assets.domain.valuation.tables import CLIP_VALUATIONS
from gopro_assets.lake.storage import FileRoot, sha256_bytes

SEED = 20250101
CATEGORICAL = ["tier", "activity", "mount", "camera_generation"]
NUMERIC = [
    "short_side_px",
    "fps",
    "duration_s",
    "published",
    "is_vertical",
    "owner_tenure_days",
    "has_gps",
    "has_imu",
    "is_drone",
]
FEATURES = CATEGORICAL + NUMERIC
# The telemetry features (R2b): what the camera recorded. ``backtest(..., TELEMETRY_FREE)``
# fits the same model without them, to measure what they add (docs/VALUATION.md).
TELEMETRY = ["camera_generation", "has_gps", "has_imu", "is_drone"]
TELEMETRY_FREE = tuple(c for c in FEATURES if c not in TELEMETRY)
TARGET = "realised_cents_per_minute"
KEY = ["deal_id", "batch_id", "clip_id"]
TIME = "revenue_month"

# The test window: the latest revenue months holding at least this share of the rows
# (at least one month, and at least one month is left to train on).
TEST_SHARE = 0.2
# Below this many training rows the gradient boosting is not fitted: the tier means are
# all the data can support.
MIN_MODEL_ROWS = 30
# Prices below a cent a minute count as a cent in the log-price fit (a free delivery).
MIN_PRICE = 1.0
MODEL_DIR = "_models/clip_value_model"
ARTEFACT = "model.pkl"
PICKLE_PROTOCOL = 5

# Training rows: each delivery with a realised price and its clip's features.
TRAINING_SQL = f"""
SELECT p.deal_id, p.batch_id, p.clip_id, p.revenue_month, p.pricing_model, p.{TARGET},
       {", ".join(f"f.{c}" for c in FEATURES)}
FROM int_delivery_prices AS p
JOIN int_clip_features AS f USING (clip_id)
WHERE p.{TARGET} IS NOT NULL
ORDER BY p.revenue_month, p.deal_id, p.batch_id, p.clip_id
"""

# Every inventory clip, to be valued.
CLIPS_SQL = f"""
SELECT clip_id, billable_seconds, {", ".join(FEATURES)}
FROM int_clip_features
ORDER BY clip_id
"""

VALUATION_SCHEMA = CLIP_VALUATIONS.schema  # declared once in domain/valuation/tables.py


class LeakageError(AssertionError):
    """A train/test split or a feature set that lets the test months' prices into training."""


# --- features --------------------------------------------------------------------------------


def check_features(columns: list[str]) -> None:
    """Only the declared clip attributes may be features: a column computed from prices
    (a tier's mean price, a clip's earlier sales, ...) would carry the target of the test
    months into training."""
    extra = [c for c in columns if c not in FEATURES]
    if extra:
        raise LeakageError(f"not clip attributes, refused as features: {extra}")
    missing = [c for c in FEATURES if c not in columns]
    if missing:
        raise ValueError(f"missing features: {missing}")


def frame(rows: pa.Table, columns: list[str] = FEATURES) -> pl.DataFrame:
    """The model's input: features in a fixed order and dtype (strings for categoricals,
    floats for numerics; booleans become 0/1)."""
    check_features(columns)
    df = pl.from_arrow(rows.select(columns))
    return df.select(
        *[pl.col(c).cast(pl.Utf8).fill_null("none") for c in CATEGORICAL],
        *[pl.col(c).cast(pl.Float64) for c in NUMERIC],
    )


def target(rows: pa.Table) -> np.ndarray:
    return np.asarray(rows.column(TARGET).to_pylist(), dtype=np.float64)


# --- split -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    train: pa.Table
    test: pa.Table
    train_months: list[str]
    test_months: list[str]


def pick_test_months(months_rows: dict[str, int], share: float = TEST_SHARE) -> list[str]:
    """The latest months, newest first, until they hold ``share`` of the rows; at least one
    month, never all of them."""
    months = sorted(months_rows)
    if len(months) < 2:
        raise ValueError(f"a time-based backtest needs two revenue months, have {months}")
    total, chosen, rows = sum(months_rows.values()), [], 0
    for month in reversed(months[1:]):
        chosen.append(month)
        rows += months_rows[month]
        if rows >= share * total:
            break
    return sorted(chosen)


def time_split(rows: pa.Table, share: float = TEST_SHARE) -> Split:
    """Train on the revenue months before the test window, test on the window."""
    months = rows.column(TIME).to_pylist()
    counts: dict[str, int] = {}
    for m in months:
        counts[m] = counts.get(m, 0) + 1
    test_months = pick_test_months(counts, share)
    first_test = test_months[0]
    train_idx = [i for i, m in enumerate(months) if m < first_test]
    test_idx = [i for i, m in enumerate(months) if m >= first_test]
    split = Split(rows.take(train_idx), rows.take(test_idx), sorted({months[i] for i in train_idx}), test_months)
    assert_no_leakage(split.train, split.test)
    return split


def assert_no_leakage(train: pa.Table, test: pa.Table) -> None:
    """Every training row is from a revenue month strictly before every test row's, and no
    delivery is on both sides. Raises :class:`LeakageError` otherwise."""
    train_months = train.column(TIME).to_pylist()
    test_months = test.column(TIME).to_pylist()
    if train_months and test_months and max(train_months) >= min(test_months):
        late = sorted({m for m in train_months if m >= min(test_months)})
        raise LeakageError(
            f"training rows from months {late} are not before the test months {sorted(set(test_months))}"
        )
    keys = lambda t: set(zip(*(t.column(k).to_pylist() for k in KEY)))  # noqa: E731
    both = keys(train) & keys(test)
    if both:
        raise LeakageError(f"{len(both)} deliveries are in both train and test, e.g. {sorted(both)[:3]}")


# --- models ----------------------------------------------------------------------------------


class TierMeanBaseline(RegressorMixin, BaseEstimator):
    """Predicts the mean realised price of the clip's tier in the training rows (the
    global mean for a tier it never saw)."""

    def fit(self, X: pl.DataFrame, y):
        y = np.asarray(y, dtype=np.float64)
        tiers = X.get_column("tier").to_list()
        sums: dict[str, list[float]] = {}
        for t, v in zip(tiers, y):
            sums.setdefault(t, []).append(float(v))
        self.tier_means_ = {t: float(np.mean(v)) for t, v in sorted(sums.items())}
        self.global_mean_ = float(np.mean(y)) if len(y) else 0.0
        return self

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        return np.array(
            [self.tier_means_.get(t, self.global_mean_) for t in X.get_column("tier").to_list()], dtype=np.float64
        )


def make_pipeline(seed: int = SEED, features: tuple[str, ...] | None = None) -> Pipeline:
    """One-hot categoricals, numerics as they are (trees need no scaling), and gradient
    boosted trees with the Huber loss and a fixed seed (no subsampling, no early stopping:
    nothing random is left but the seed). ``features`` (default: all of :data:`FEATURES`)
    picks a subset, e.g. :data:`TELEMETRY_FREE`; the other columns are dropped."""
    use = FEATURES if features is None else [c for c in FEATURES if c in features]
    features = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                [c for c in CATEGORICAL if c in use],
            ),
            ("numeric", "passthrough", [c for c in NUMERIC if c in use]),
        ],
        verbose_feature_names_out=False,
    )
    regressor = GradientBoostingRegressor(
        loss="huber",
        alpha=0.9,
        n_estimators=300,
        learning_rate=0.05,
        max_depth=3,
        subsample=1.0,
        random_state=seed,
    )
    return Pipeline([("features", features), ("regressor", regressor)])


class TierRelativeModel(RegressorMixin, BaseEstimator):
    """price = tier mean x exp(premium), the premium learned by :func:`make_pipeline` on
    log(price / tier mean).

    Why not boost the price itself: prices are multiplicative (a tier's base times the
    premiums buyers pay for an activity or for unpublished footage), so on the log of the
    price relative to the tier they become additive and small, which shallow trees learn
    from a few hundred rows; and a rare tier (drone footage) starts from its own mean
    instead of being pulled towards the common ones. Huber, not squared error: a flat-fee
    batch that delivered a few seconds spreads its whole fee over them (thousands of cents
    a minute), and squared error would chase those rows. Measured against plain boosting
    (squared, absolute, Huber; on prices and on log prices) and histogram boosting:
    docs/VALUATION.md.
    """

    def __init__(self, seed: int = SEED, features: tuple[str, ...] | None = None):
        self.seed = seed
        self.features = features  # None: all of FEATURES

    def fit(self, X: pl.DataFrame, y):
        y = np.asarray(y, dtype=np.float64)
        self.tier_means_ = TierMeanBaseline().fit(X, y)
        base = np.maximum(self.tier_means_.predict(X), MIN_PRICE)
        self.premium_ = make_pipeline(self.seed, self.features).fit(X, np.log(np.maximum(y, MIN_PRICE) / base))
        return self

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        return np.maximum(self.tier_means_.predict(X), MIN_PRICE) * np.exp(self.premium_.predict(X))


def make_model(seed: int = SEED, features: tuple[str, ...] | None = None) -> TierRelativeModel:
    return TierRelativeModel(seed, features)


def _metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    r2 = float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else None
    return {"mae": float(mean_absolute_error(y_true, y_pred)), "r2": r2}


@dataclass
class Backtest:
    train_months: list[str]
    test_months: list[str]
    train_rows: int
    test_rows: int
    model: dict  # {"mae", "r2"} of the gradient boosting on the test months
    baseline: dict  # the same for the tier-mean baseline
    model_per_minute: dict  # the same on the test months' per_minute deliveries only
    baseline_per_minute: dict
    test_clips_seen_in_training: int  # clips delivered in both windows (different deliveries)

    @property
    def model_beats_baseline(self) -> bool:
        return self.model["mae"] < self.baseline["mae"]


def backtest(
    rows: pa.Table, seed: int = SEED, share: float = TEST_SHARE, features: tuple[str, ...] | None = None
) -> Backtest:
    """Fit on the training months only, score model and baseline on the test months.
    ``features``: the model's feature subset (default all; :data:`TELEMETRY_FREE` measures
    what the telemetry adds)."""
    split = time_split(rows, share)
    X_train, y_train = frame(split.train), target(split.train)
    X_test, y_test = frame(split.test), target(split.test)
    model = make_model(seed, features).fit(X_train, y_train)
    baseline = TierMeanBaseline().fit(X_train, y_train)
    seen = set(split.train.column("clip_id").to_pylist())
    predicted, base = np.maximum(model.predict(X_test), 0.0), baseline.predict(X_test)
    per_minute = (
        np.array([m == "per_minute" for m in split.test.column("pricing_model").to_pylist()], dtype=bool)
        if "pricing_model" in split.test.column_names
        else np.ones(len(y_test), dtype=bool)
    )
    empty = {"mae": None, "r2": None}
    return Backtest(
        train_months=split.train_months,
        test_months=split.test_months,
        train_rows=split.train.num_rows,
        test_rows=split.test.num_rows,
        model=_metrics(y_test, predicted),
        baseline=_metrics(y_test, base),
        model_per_minute=_metrics(y_test[per_minute], predicted[per_minute]) if per_minute.any() else empty,
        baseline_per_minute=_metrics(y_test[per_minute], base[per_minute]) if per_minute.any() else empty,
        test_clips_seen_in_training=len(set(split.test.column("clip_id").to_pylist()) & seen),
    )


@dataclass
class TrainedValuation:
    """What the clip_value_model asset produces: the served estimator and its evidence."""

    estimator: object | None  # fitted TierRelativeModel or TierMeanBaseline; None without any data
    kind: str  # gradient_boosting | tier_mean_baseline | none
    reason: str
    training_rows: int
    months: list[str]
    backtest: Backtest | None
    blob: bytes = b""
    sha256: str = ""
    version: str = ""
    metrics: dict = field(default_factory=dict)
    seed: int = SEED
    backtest_without_telemetry: Backtest | None = None  # the same model without TELEMETRY


def train(rows: pa.Table, seed: int = SEED, share: float = TEST_SHARE) -> TrainedValuation:
    """Backtest, then fit the served estimator on every month.

    The gradient boosting is served when it beat the baseline in the backtest; otherwise
    (or with too little history to judge) the tier means are, and ``reason`` says why.
    """
    months = sorted(set(rows.column(TIME).to_pylist()))
    if rows.num_rows == 0:
        return TrainedValuation(None, "none", "no delivery has a realised price yet", 0, [], None)
    bt = bt_free = None
    if len(months) >= 2:
        bt = backtest(rows, seed, share)
        # the same model without the telemetry features: what they add, for the metadata
        bt_free = backtest(rows, seed, share, TELEMETRY_FREE) if rows.num_rows >= MIN_MODEL_ROWS else None
    X, y = frame(rows), target(rows)
    if rows.num_rows < MIN_MODEL_ROWS:
        kind, reason = (
            "tier_mean_baseline",
            f"{rows.num_rows} priced deliveries < {MIN_MODEL_ROWS}: too few to fit trees",
        )
    elif bt is None:
        kind, reason = "tier_mean_baseline", "one revenue month only: no backtest to show the model is better"
    elif not bt.model_beats_baseline:
        kind, reason = (
            "tier_mean_baseline",
            (f"the model's backtest MAE {bt.model['mae']:.2f} did not beat the baseline's {bt.baseline['mae']:.2f}"),
        )
    else:
        kind, reason = (
            "gradient_boosting",
            (f"backtest MAE {bt.model['mae']:.2f} < baseline {bt.baseline['mae']:.2f} on {', '.join(bt.test_months)}"),
        )
    estimator = make_model(seed) if kind == "gradient_boosting" else TierMeanBaseline()
    estimator.fit(X, y)
    blob = pickle.dumps(estimator, protocol=PICKLE_PROTOCOL)
    sha = sha256_bytes(blob)
    trained = TrainedValuation(
        estimator, kind, reason, rows.num_rows, months, bt, blob, sha, version=f"{months[-1]}-{sha[:12]}", seed=seed
    )
    trained.backtest_without_telemetry = bt_free
    trained.metrics = metrics_dict(trained)
    return trained


def metrics_dict(t: TrainedValuation) -> dict:
    """Plain JSON of the evidence (written next to the artefact and into asset metadata)."""
    bt, free = t.backtest, t.backtest_without_telemetry
    return {
        "model_kind": t.kind,
        "reason": t.reason,
        "training_rows": t.training_rows,
        "months": t.months,
        "seed": t.seed,
        "features": FEATURES,
        "telemetry_features": TELEMETRY,
        "backtest": None
        if bt is None
        else {
            "train_months": bt.train_months,
            "test_months": bt.test_months,
            "train_rows": bt.train_rows,
            "test_rows": bt.test_rows,
            "model_mae": bt.model["mae"],
            "model_r2": bt.model["r2"],
            "baseline_mae": bt.baseline["mae"],
            "baseline_r2": bt.baseline["r2"],
            "per_minute_model_mae": bt.model_per_minute["mae"],
            "per_minute_model_r2": bt.model_per_minute["r2"],
            "per_minute_baseline_mae": bt.baseline_per_minute["mae"],
            "per_minute_baseline_r2": bt.baseline_per_minute["r2"],
            "test_clips_seen_in_training": bt.test_clips_seen_in_training,
            # the same model fitted without the telemetry features (None below MIN_MODEL_ROWS)
            "model_mae_without_telemetry": free.model["mae"] if free else None,
            "per_minute_model_mae_without_telemetry": free.model_per_minute["mae"] if free else None,
        },
    }


# --- artefact --------------------------------------------------------------------------------


def save(lake_root: str, trained: TrainedValuation) -> dict:
    """Write ``<lake>/_models/clip_value_model/<version>/model.pkl`` (+ metrics.json) and
    point ``latest.json`` at it. Returns the pointer."""
    root = FileRoot(lake_root)
    if trained.estimator is None:
        pointer = {"version": None, "model_kind": "none", "reason": trained.reason}
    else:
        rel = f"{MODEL_DIR}/{trained.version}/{ARTEFACT}"
        uri = root.write_bytes(rel, trained.blob)
        root.write_bytes(
            f"{MODEL_DIR}/{trained.version}/metrics.json",
            json.dumps(trained.metrics, indent=2, sort_keys=True).encode(),
        )
        pointer = {
            "version": trained.version,
            "path": rel,
            "uri": uri,
            "sha256": trained.sha256,
            "model_kind": trained.kind,
        }
    root.write_bytes(f"{MODEL_DIR}/latest.json", json.dumps(pointer, indent=2, sort_keys=True).encode())
    return pointer


def read_pointer(lake_root: str) -> dict:
    """``latest.json``: the served version, its path and sha256 (version None: no model)."""
    root = FileRoot(lake_root)
    if not root.exists(f"{MODEL_DIR}/latest.json"):
        return {"version": None, "model_kind": "none", "reason": "clip_value_model has not run"}
    return json.loads(root.read_bytes(f"{MODEL_DIR}/latest.json"))


def load(lake_root: str) -> tuple[object | None, dict]:
    """The served estimator and its pointer; the bytes must match the recorded sha256
    (the pickle is only ever read from our own lake, after this check)."""
    root = FileRoot(lake_root)
    pointer = read_pointer(lake_root)
    if pointer.get("version") is None:
        return None, pointer
    blob = root.read_bytes(pointer["path"])
    if sha256_bytes(blob) != pointer["sha256"]:
        raise ValueError(f"model artefact {pointer['path']} does not match its sha256 {pointer['sha256']}")
    return pickle.loads(blob), pointer  # noqa: S301 - our own artefact, hash checked above


# --- valuations ------------------------------------------------------------------------------


def value_clips(estimator, pointer: dict, clips: pa.Table) -> pa.Table:
    """clip_valuations: a predicted price per minute for every clip and the predicted value
    of one sale of the whole clip (price x billable_seconds / 60). Empty without a model."""
    if estimator is None or clips.num_rows == 0:
        return VALUATION_SCHEMA.empty_table()
    per_minute = np.maximum(estimator.predict(frame(clips)), 0.0)
    seconds = clips.column("billable_seconds").to_pylist()
    return pa.table(
        {
            "clip_id": clips.column("clip_id"),
            "predicted_cents_per_minute": pa.array(per_minute, pa.float64()),
            "billable_seconds": pa.array(seconds, pa.int64()),
            "predicted_value_cents": pa.array(per_minute * np.asarray(seconds, dtype=np.float64) / 60.0, pa.float64()),
            "model_version": pa.array([pointer["version"]] * clips.num_rows, pa.string()),
            "model_kind": pa.array([pointer["model_kind"]] * clips.num_rows, pa.string()),
        },
        schema=VALUATION_SCHEMA,
    )


# --- one process (lib.pipeline.run_all) ------------------------------------------------------


def train_from_lake(store) -> tuple[TrainedValuation, dict]:
    """What the clip_value_model asset does: train on the lake's SQL features, save."""
    from gopro_assets.sql_engine.runner import connect, fetch_arrow

    con = connect(store, ["int_clip_features", "int_delivery_prices"], {})
    try:
        rows = fetch_arrow(con, TRAINING_SQL)
    finally:
        con.close()
    trained = train(rows)
    return trained, save(store.root, trained)


def value_lake(store) -> tuple[pa.Table, dict, int]:
    """What the clip_valuations asset does: value every clip with the saved model and
    write the table. Returns it, the model pointer and the number of inventory clips."""
    from gopro_assets.sql_engine.runner import connect, fetch_arrow

    estimator, pointer = load(store.root)
    con = connect(store, ["int_clip_features"], {})
    try:
        clips = fetch_arrow(con, CLIPS_SQL)
    finally:
        con.close()
    table = value_clips(estimator, pointer, clips)
    store.overwrite(CLIP_VALUATIONS.name, table)
    return table, pointer, clips.num_rows


def run_stage(store, variables: dict, run_sql) -> None:
    """The valuation stage in the order Dagster runs it (``run_sql`` is
    ``lib.pipeline.run_sql``, passed in to keep this module free of the pipeline)."""
    run_sql(store, "int_clip_features", variables)
    run_sql(store, "int_delivery_prices", variables)
    train_from_lake(store)
    value_lake(store)
    if store.exists("consent_snapshots"):
        run_sql(store, "library_valuation", variables)
