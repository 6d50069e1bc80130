"""Profile service settings (``RAPPORT_*``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field, field_validator

from rapport.shared import topics
from rapport.shared.settings import CommonSettings


class ProfileSettings(CommonSettings):
    profile_port: int = 8002
    profile_group_id: str = Field(default="rapport-profile",
                                  description="Kafka consumer group of the profile processors")
    profile_data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "rapport-profile",
        description="Scratch folder of the stream processor (state lives in Redis, not here)")
    touchpoints_topic: str = Field(default=topics.TOUCHPOINTS.name,
                                   description="Where ingest writes touchpoints")
    resolved_topic: str = Field(default=topics.RESOLVED.name,
                                description="Re-keyed stream between the two stages")
    identity_join_limit: int = Field(
        default=5, ge=1, description="How many profiles one identifier value (email, phone, "
                                     "loyalty id, device) may join before links are refused")
    segments_file: Path | None = Field(default=None,
                                       description="JSON list of segment definitions")
    session_timeout_s: float = Field(
        default=30, ge=6, description="How long a silent (crashed) worker keeps its "
                                      "partitions before the group hands them over")
    timeline_length: int = Field(default=100, ge=1, le=1000)
    demand_enabled: bool = Field(
        default=True, description="Count demand (buckets, sketches, spikes) in stage 2; off, "
                                  "profiles are folded without it and no bucket is closed")
    demand_bucket_s: int = Field(
        default=300, ge=10, le=3600,
        description="Base demand bucket (event time, seconds); must divide an hour. Buckets "
                    "roll up to hours and days")
    demand_lateness_s: float = Field(
        default=600, ge=0, description="How long after its bucket ends (event time) an event "
                                       "is still counted; later ones are counted as late")
    demand_idle_s: float = Field(
        default=120, gt=0, description="A partition with no data for this long (wall time) no "
                                       "longer holds the demand watermark back")
    demand_backfill_s: float = Field(
        default=86400, gt=0, description="At most this much event time of buckets is closed "
                                         "when the closer starts or catches up; older is skipped")
    demand_close_interval_s: float = Field(default=2.0, gt=0, le=60)
    demand_top_products: int = Field(
        default=20, ge=1, le=1000, description="Heavy products tracked per metric from each "
                                               "heavy list (the bucket's, the last day's)")
    demand_product_slots: int = Field(
        default=50, ge=1, le=10000, description="At most this many product detectors per "
                                                 "metric")
    demand_max_series: int = Field(
        default=2000, ge=1, description="At most this many category, region, channel and "
                                        "segment series are watched for spikes")
    demand_sketch_lg_k: int = Field(
        default=10, ge=3, le=16, description="log2 of a product sketch's map size (3/4 of it "
                                             "is the number of products a sketch tracks)")
    demand_forecast_s: int = Field(default=3 * 3600, ge=0, le=7 * 86400,
                                   description="How far ahead a spike's forecast goes")
    demand_audience_size: int = Field(
        default=1000, ge=1, le=100000, description="Customers kept per category, ranked by "
                                                   "affinity (the audience of a spike)")

    @field_validator("demand_bucket_s")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError("demand_bucket_s must divide 3600")
        return value
