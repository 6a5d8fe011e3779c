"""meta-run leases: the service runs meta-training as a job, claimed and resumed like a study

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:37:15.298515
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import optforge.storage._types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("optforge_meta_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("heartbeat_at", optforge.storage._types.UTCDateTime(timezone=True), nullable=True)
        )
        # Existing runs (recorded before this revision) were never claimed: 0 for them.
        batch_op.add_column(sa.Column("claim_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_foreign_key(
            batch_op.f("fk_optforge_meta_runs_owner_id_optforge_users"),
            "optforge_users",
            ["owner_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("optforge_meta_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_optforge_meta_runs_owner_id_optforge_users"), type_="foreignkey")
        batch_op.drop_column("claim_count")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("owner_id")
