"""knowledge revisions (guides and policy documents with history), golden questions, index builds

Revision ID: 0003_knowledge_revisions
Revises: 0002
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_knowledge_revisions"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_revisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("meta", sa.Text),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("kind", "key", "number", name="uq_knowledge_revision"),
    )
    op.create_index("ix_knowledge_revisions_key", "knowledge_revisions", ["key"])
    op.create_table(
        "golden_questions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("turns", sa.Text, nullable=False),
        sa.Column("must", sa.Text, nullable=False),
        sa.Column("must_not", sa.Text, nullable=False, server_default="[]"),
        sa.Column("note", sa.Text),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "index_builds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("version", sa.String(80)),
        sa.Column("live_version", sa.String(80)),
        sa.Column("revisions", sa.Text, nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("started_by", sa.String(40), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("published_by", sa.String(40)),
        sa.Column("published_at", sa.DateTime),
        sa.Column("override_reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("index_builds")
    op.drop_table("golden_questions")
    op.drop_index("ix_knowledge_revisions_key", table_name="knowledge_revisions")
    op.drop_table("knowledge_revisions")
