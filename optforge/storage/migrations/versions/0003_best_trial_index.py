"""best-trial index: a status poll finds the study's best trial in the index instead of sorting its trials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 21:35:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("optforge_trials", schema=None) as batch_op:
        batch_op.create_index(
            "ix_optforge_trials_best", ["study_id", "status", "phase", "final", "number"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("optforge_trials", schema=None) as batch_op:
        batch_op.drop_index("ix_optforge_trials_best")
