"""bookings and handoffs

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("matter", sa.String(80)),
        sa.Column("centre", sa.String(40), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("slot", sa.String(20), nullable=False),
        sa.Column("place", sa.Integer),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("cancelled_at", sa.DateTime),
        sa.UniqueConstraint("centre", "date", "slot", "place", name="uq_booking_place"),
    )
    op.create_index("ix_bookings_code", "bookings", ["code"], unique=True)
    op.create_index("ix_bookings_sender", "bookings", ["sender"])
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("matter", sa.String(80)),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_handoffs_sender", "handoffs", ["sender"])


def downgrade() -> None:
    op.drop_table("handoffs")
    op.drop_table("bookings")
