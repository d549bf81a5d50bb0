"""Feedback: one verdict per prediction, and the images callers chose to keep.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

``kept_images`` holds each kept picture once, by the sha256 of its cleaned bytes (re-encoded
without EXIF or GPS, size-capped); ``prediction_images`` says which prediction it came with.
``feedback`` holds the verdicts: the unique prediction id is what makes it one per prediction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``kept_images``, ``prediction_images`` and ``feedback``."""
    op.create_table(
        "kept_images",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "prediction_images",
        sa.Column(
            "prediction_id",
            sa.Uuid,
            sa.ForeignKey("predictions.id", name="fk_prediction_images_prediction"),
            primary_key=True,
        ),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("kept_images.sha256", name="fk_prediction_images_image"),
            nullable=False,
        ),
    )
    op.create_index("ix_prediction_images_sha256", "prediction_images", ["sha256"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "prediction_id",
            sa.Uuid,
            sa.ForeignKey("predictions.id", name="fk_feedback_prediction"),
            nullable=False,
        ),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("species", sa.String(128)),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
        sa.CheckConstraint(
            "verdict IN ('correct', 'species', 'not_pokemon')", name="ck_feedback_verdict"
        ),
        sa.CheckConstraint(
            "review IN ('pending', 'accepted', 'rejected')", name="ck_feedback_review"
        ),
    )
    op.create_index("ix_feedback_ts", "feedback", ["ts"])


def downgrade() -> None:
    """Drop the feedback tables (the prediction log stays)."""
    op.drop_index("ix_feedback_ts", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_prediction_images_sha256", table_name="prediction_images")
    op.drop_table("prediction_images")
    op.drop_table("kept_images")
