"""The prediction log as it stood before migrations: one row per prediction.

Revision ID: 0001
Revises:
Create Date: 2026-12-04

A database the API created before migrations existed already holds exactly this table: it is
adopted (stamped at this revision) rather than created again, see pokedex.store.migrate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``predictions`` and its two indexes."""
    op.create_table(
        "predictions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("top1", sa.String(128), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("energy", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("brightness", sa.Float),
        sa.Column("contrast", sa.Float),
        sa.Column("colourfulness", sa.Float),
        sa.Column("sharpness", sa.Float),
        sa.Column("alpha_coverage", sa.Float),
        sa.Column("embedding_norm", sa.Float),
        sa.Column("embedding_mean", sa.Float),
        sa.Column("embedding_head", sa.JSON),
        sa.Column("image", sa.LargeBinary),
    )
    op.create_index("ix_predictions_request_id", "predictions", ["request_id"])
    op.create_index("ix_predictions_ts", "predictions", ["ts"])


def downgrade() -> None:
    """Drop ``predictions`` (and every logged prediction with it)."""
    op.drop_index("ix_predictions_ts", table_name="predictions")
    op.drop_index("ix_predictions_request_id", table_name="predictions")
    op.drop_table("predictions")
